// Open MCT plugin for Mission Control: the spacecraft registry as a telemetry dictionary,
// historical telemetry from /api/v1/telemetry (raw samples up to 6 hours, 1-minute or 1-hour
// rollups beyond), realtime values from the WebSocket relay, and limits from each spacecraft's
// configuration. Usage:
//   openmct.install(MissionControlPlugin({ baseUrl: "", token: "<API token>" }));
// `baseUrl` defaults to the page's origin (the server serves this plugin at /openmct/).
(function (global) {
  "use strict";

  const NAMESPACE = "mc";
  const TYPE = "mc.telemetry";
  const RAW_MAX_MS = 6 * 3600 * 1000;
  const PAGES_MAX = 10;

  function MissionControlPlugin(options) {
    const base = (options && options.baseUrl) || "";
    const token = options && options.token;

    async function api(path) {
      const r = await fetch(`${base}/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } });
      if (!r.ok) throw new Error(`${path}: ${r.status}`);
      return r.json();
    }

    const parameterKey = (sc, name) => `p~${sc}~${encodeURIComponent(name)}`;
    function parseKey(key) {
      const [kind, sc, name] = key.split("~");
      return { kind, sc, name: name === undefined ? undefined : decodeURIComponent(name) };
    }
    const id = (key) => ({ namespace: NAMESPACE, key });

    // The limits in force of a spacecraft, cached for a minute.
    const limitsCache = new Map();
    async function limits(sc) {
      const hit = limitsCache.get(sc);
      if (hit && Date.now() - hit.at < 60000) return hit.value;
      let value = {};
      try {
        const config = await api(`/spacecraft/${encodeURIComponent(sc)}/config`);
        value = (config.inForce && config.inForce.parameters) || {};
      } catch (_) { /* none configured */ }
      limitsCache.set(sc, { at: Date.now(), value });
      return value;
    }

    // The dictionary of a spacecraft: parameters with limits and parameters ever sampled.
    async function parameters(sc) {
      const [config, latest] = await Promise.all([
        limits(sc),
        api(`/telemetry/latest?spacecraftId=${encodeURIComponent(sc)}`).catch(() => ({ parameters: {} })),
      ]);
      const names = new Set([...Object.keys(config), ...Object.keys(latest.parameters || {})]);
      return [...names].sort();
    }

    // One relay connection for every realtime subscription, resubscribed after a reconnect
    // from the last telemetry position seen.
    const relay = { ws: null, listeners: new Map(), since: null, retry: 0 };
    function relayTopic(sc) { return `telemetry:${sc}`; }
    function relayConnect() {
      const scheme = (base || location.origin).startsWith("https") ? "wss" : "ws";
      const host = base ? base.replace(/^https?:\/\//, "") : location.host;
      const ws = new WebSocket(`${scheme}://${host}/api/v1/ws?access_token=${encodeURIComponent(token)}`);
      relay.ws = ws;
      ws.onopen = () => {
        relay.retry = 0;
        const topics = [...relay.listeners.keys()];
        if (topics.length) ws.send(JSON.stringify({ op: "subscribe", topics, since: relay.since }));
      };
      ws.onmessage = (m) => {
        const frame = JSON.parse(m.data);
        if (frame.type === "subscribed" && relay.since === null) relay.since = frame.positions.telemetry;
        if (frame.type !== "telemetry") return;
        relay.since = Math.max(relay.since || 0, frame.position);
        const callbacks = relay.listeners.get(frame.topic);
        if (!callbacks) return;
        for (const snapshot of Array.isArray(frame.data) ? frame.data : [frame.data]) {
          const utc = typeof snapshot.timestamp === "number" ? snapshot.timestamp : Date.parse(snapshot.timestamp);
          for (const [name, value] of Object.entries(snapshot.parameters || {})) {
            for (const cb of callbacks.get(name) || []) cb({ utc, value, id: parameterKey(snapshot.spacecraftId, name) });
          }
        }
      };
      ws.onclose = () => {
        if (relay.ws !== ws) return;
        setTimeout(relayConnect, Math.min(5000, 250 * 2 ** relay.retry++));
      };
    }
    function relaySubscribe(sc, name, callback) {
      const topic = relayTopic(sc);
      const fresh = !relay.listeners.has(topic);
      if (fresh) relay.listeners.set(topic, new Map());
      const byName = relay.listeners.get(topic);
      if (!byName.has(name)) byName.set(name, new Set());
      byName.get(name).add(callback);
      if (!relay.ws) relayConnect();
      else if (fresh && relay.ws.readyState === WebSocket.OPEN) relay.ws.send(JSON.stringify({ op: "subscribe", topics: [topic], since: null }));
      return () => {
        byName.get(name).delete(callback);
        if (!byName.get(name).size) byName.delete(name);
        if (!byName.size) {
          relay.listeners.delete(topic);
          if (relay.ws && relay.ws.readyState === WebSocket.OPEN) relay.ws.send(JSON.stringify({ op: "unsubscribe", topics: [topic] }));
        }
      };
    }

    async function history(sc, name, start, end) {
      const q = `spacecraftId=${encodeURIComponent(sc)}&parameter=${encodeURIComponent(name)}` +
        `&from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}`;
      if (end - start > RAW_MAX_MS) {
        const interval = end - start > 14 * 24 * 3600 * 1000 ? "1h" : "1m";
        const page = await api(`/telemetry/rollups?${q}&interval=${interval}&limit=500`);
        return page.items.map((b) => ({ utc: Date.parse(b.bucket), value: b.avg !== undefined ? b.avg : b.last }));
      }
      const out = [];
      let cursor = null;
      for (let i = 0; i < PAGES_MAX; i++) {
        const page = await api(`/telemetry?${q}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        for (const s of page.items) if (typeof s.value === "number") out.push({ utc: Date.parse(s.timestamp), value: s.value });
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      return out.sort((a, b) => a.utc - b.utc);
    }

    function limitsOf(l) {
      const band = (low, high, color) => ({
        low: { color, value: low === undefined ? -Infinity : low },
        high: { color, value: high === undefined ? Infinity : high },
      });
      const out = {};
      if (l.warnLow !== undefined || l.warnHigh !== undefined) out.WARNING = band(l.warnLow, l.warnHigh, "yellow");
      if (l.critLow !== undefined || l.critHigh !== undefined) out.CRITICAL = band(l.critLow, l.critHigh, "red");
      return out;
    }

    return function install(openmct) {
      openmct.objects.addRoot(id("root"));
      openmct.types.addType(TYPE, {
        name: "Mission Control parameter",
        description: "A telemetry parameter of a spacecraft registered in Mission Control",
        cssClass: "icon-telemetry",
      });
      openmct.objects.addProvider(NAMESPACE, {
        get: async (identifier) => {
          const key = identifier.key;
          if (key === "root") {
            return { identifier, name: "Mission Control", type: "folder", location: "ROOT" };
          }
          const { kind, sc, name } = parseKey(key);
          if (kind === "sc") {
            return { identifier, name: sc, type: "folder", location: `${NAMESPACE}:root` };
          }
          return {
            identifier,
            name,
            type: TYPE,
            location: `${NAMESPACE}:sc~${sc}`,
            telemetry: {
              values: [
                { key: "value", name: name, format: "float", hints: { range: 1 } },
                { key: "utc", source: "utc", name: "Timestamp", format: "utc", hints: { domain: 1 } },
              ],
            },
          };
        },
      });
      openmct.composition.addProvider({
        appliesTo: (d) => d.identifier.namespace === NAMESPACE && d.type === "folder",
        load: async (d) => {
          if (d.identifier.key === "root") {
            const page = await api("/spacecraft?limit=500");
            return page.items.map((s) => id(`sc~${s.id}`));
          }
          const { sc } = parseKey(d.identifier.key);
          return (await parameters(sc)).map((name) => id(parameterKey(sc, name)));
        },
      });
      openmct.telemetry.addProvider({
        supportsRequest: (d) => d.type === TYPE,
        request: async (d, options) => {
          const { sc, name } = parseKey(d.identifier.key);
          if (options && options.strategy === "latest") {
            const latest = await api(`/telemetry/latest?spacecraftId=${encodeURIComponent(sc)}`);
            const v = (latest.parameters || {})[name];
            return v && typeof v.value === "number" ? [{ utc: Date.parse(v.timestamp), value: v.value }] : [];
          }
          const end = (options && options.end) || Date.now();
          const start = (options && options.start) || end - 15 * 60 * 1000;
          return history(sc, name, start, end);
        },
        supportsSubscribe: (d) => d.type === TYPE,
        subscribe: (d, callback) => {
          const { sc, name } = parseKey(d.identifier.key);
          return relaySubscribe(sc, name, callback);
        },
        supportsLimits: (d) => d.type === TYPE,
        getLimits: (d) => {
          const { sc, name } = parseKey(d.identifier.key);
          return { limits: async () => limitsOf((await limits(sc))[name] || {}) };
        },
        getLimitEvaluator: (d) => {
          const { sc, name } = parseKey(d.identifier.key);
          let current = {};
          limits(sc).then((all) => { current = all[name] || {}; });
          return {
            evaluate: (datum) => {
              const v = datum.value, l = current;
              if ((l.critHigh !== undefined && v > l.critHigh) || (l.critLow !== undefined && v < l.critLow)) {
                return { cssClass: "is-limit--red", name: "Critical" };
              }
              if ((l.warnHigh !== undefined && v > l.warnHigh) || (l.warnLow !== undefined && v < l.warnLow)) {
                return { cssClass: "is-limit--yellow", name: "Warning" };
              }
              return undefined;
            },
          };
        },
      });
    };
  }

  global.MissionControlPlugin = MissionControlPlugin;
})(typeof window !== "undefined" ? window : globalThis);
