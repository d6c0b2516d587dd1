//! The price table a new deployment starts from (`mission-control pricing seed`): public list
//! prices in USD per million tokens of common hosted models, and free local models. They take
//! effect at [`SEED_FROM`]; correct or supersede them with `POST /api/v1/pricing` as providers
//! change their prices (a later `effectiveFrom` keeps history priced as it was).

/// 2025-01-01T00:00:00Z.
pub const SEED_FROM_MS: i64 = 1_735_689_600_000;

/// (provider, model, input, output, cached input, reasoning) in USD per million tokens.
pub const PRICES: &[(&str, &str, f64, f64, f64, f64)] = &[
    ("openai", "gpt-4o", 2.50, 10.00, 1.25, 10.00),
    ("openai", "gpt-4o-mini", 0.15, 0.60, 0.075, 0.60),
    ("openai", "gpt-4.1", 2.00, 8.00, 0.50, 8.00),
    ("openai", "gpt-4.1-mini", 0.40, 1.60, 0.10, 1.60),
    ("openai", "gpt-4.1-nano", 0.10, 0.40, 0.025, 0.40),
    ("openai", "o3", 2.00, 8.00, 0.50, 8.00),
    ("openai", "o4-mini", 1.10, 4.40, 0.275, 4.40),
    ("anthropic", "claude-opus-4", 15.00, 75.00, 1.50, 75.00),
    ("anthropic", "claude-sonnet-4", 3.00, 15.00, 0.30, 15.00),
    ("anthropic", "claude-3-5-haiku", 0.80, 4.00, 0.08, 4.00),
    ("google", "gemini-2.5-pro", 1.25, 10.00, 0.31, 10.00),
    ("google", "gemini-2.5-flash", 0.30, 2.50, 0.075, 2.50),
    ("mistral", "mistral-large", 2.00, 6.00, 2.00, 6.00),
    ("mistral", "mistral-small", 0.10, 0.30, 0.10, 0.30),
    // Local models cost nothing per token.
    ("ollama", "*", 0.0, 0.0, 0.0, 0.0),
    ("llama.cpp", "*", 0.0, 0.0, 0.0, 0.0),
    ("vllm", "*", 0.0, 0.0, 0.0, 0.0),
];
