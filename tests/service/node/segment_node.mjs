// @segment/analytics-node, unchanged but for host and key, sending a known set of events to telemetry-mcp.
// env: TELEMETRY_HOST, TELEMETRY_WRITE_KEY, RUN_ID, SDK_NODE_MODULES (where the SDK is installed).
// Prints one JSON line: {"errors": [...], "requests": [...]} (SDK errors, the URLs it posted to).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SDK_NODE_MODULES}/`);
const { Analytics } = await import(require.resolve("@segment/analytics-node"));

const user = `node-seg-${process.env.RUN_ID}`;
const errors = [];
const requests = [];
const client = new Analytics({ writeKey: process.env.TELEMETRY_WRITE_KEY, host: process.env.TELEMETRY_HOST });
client.on("error", (err) => errors.push(String(err?.reason ?? err?.message ?? err?.code ?? err)));
client.on("http_request", (req) => requests.push(req.url));

client.track({
  userId: user,
  event: "Order Completed",
  properties: {
    component: "Checkout",
    duration_ms: 40,
    password: "hunter2",
    client_secret: "abc",
    contact: "alice@example.org",
  },
  context: { ip: "203.0.113.7", os: { name: "Linux" } },
});
client.page({ userId: user, category: "Docs", name: "Home", properties: { path: "/orders/123456?x=1", component: "Nav" } });
client.screen({ userId: user, name: "Main" });
client.identify({ userId: user, traits: { plan: "pro", email: "alice@example.org" }, context: { ip: "203.0.113.7" } });
await client.closeAndFlush({ timeout: 10000 });
console.log(JSON.stringify({ errors, requests }));
