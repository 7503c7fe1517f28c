// posthog-node, unchanged but for host and key, sending a known set of events to telemetry-mcp.
// env: TELEMETRY_HOST, TELEMETRY_WRITE_KEY, RUN_ID, SDK_NODE_MODULES (where posthog-node is installed).
// Prints one JSON line: {"errors": [...]} (what the SDK reported while sending).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SDK_NODE_MODULES}/`);
const { PostHog } = await import(require.resolve("posthog-node"));

const user = `node-ph-${process.env.RUN_ID}`;
const errors = [];
const client = new PostHog(process.env.TELEMETRY_WRITE_KEY, { host: process.env.TELEMETRY_HOST });
client.on("error", (err) => errors.push(String(err?.message ?? err)));

client.capture({
  distinctId: user,
  event: "feature_used",
  properties: {
    component: "Editor",
    duration_ms: 12.5,
    api_secret: "s3cr3t-value",
    note: "mail me at bob@example.com",
    $ip: "203.0.113.7",
    $current_url: "https://app.example/profile/abc-123-def-456?tab=settings",
  },
});
client.capture({
  distinctId: user,
  event: "$pageview",
  properties: { $current_url: "https://app.example/docs/getting-started?utm=x", $title: "Docs" },
});
client.capture({ distinctId: user, event: "Report Exported", properties: { component: "Reports" } });
client.identify({ distinctId: user, properties: { plan: "pro" } });
await client.shutdown(10000);
console.log(JSON.stringify({ errors }));
