/* The MCP Apps side of a view (ext-apps 2026-01-26): JSON-RPC over postMessage with the host.
   ui/initialize → host answer (theme, styles) → ui/notifications/initialized; then the host sends
   ui/notifications/tool-input and ui/notifications/tool-result (a CallToolResult whose
   structuredContent is what TM.render draws). Follows host-context-changed (theme), answers ping and
   ui/resource-teardown, and reports its size with ui/notifications/size-changed. */
(function () {
  "use strict";
  var KIND = document.documentElement.getAttribute("data-kind");
  var VERSION = document.documentElement.getAttribute("data-version") || "0";
  var root = document.getElementById("tm-root");
  var status = document.getElementById("tm-status");
  var nextId = 1, pending = {}, last = null, lastSize = "";

  function post(msg) { window.parent.postMessage(msg, "*"); }
  function request(method, params) {
    var id = nextId++;
    post({ jsonrpc: "2.0", id: id, method: method, params: params });
    return new Promise(function (resolve, reject) { pending[id] = { resolve: resolve, reject: reject }; });
  }
  function notify(method, params) { post({ jsonrpc: "2.0", method: method, params: params || {} }); }
  function reply(id, result) { post({ jsonrpc: "2.0", id: id, result: result }); }

  function applyContext(ctx) {
    if (!ctx) return;
    var doc = document.documentElement;
    if (ctx.theme === "dark" || ctx.theme === "light") {
      doc.setAttribute("data-theme", ctx.theme);
      doc.style.colorScheme = ctx.theme;
    }
    var vars = ctx.styles && ctx.styles.variables;
    if (vars) for (var k in vars) if (vars[k]) doc.style.setProperty(k, vars[k]);
    var fonts = ctx.styles && ctx.styles.css && ctx.styles.css.fonts;
    if (fonts && !document.getElementById("tm-host-fonts")) {
      var s = document.createElement("style");
      s.id = "tm-host-fonts";
      s.textContent = fonts;
      document.head.appendChild(s);
    }
    var dims = ctx.containerDimensions;
    if (dims && dims.maxWidth) doc.style.maxWidth = dims.maxWidth + "px";
    if (last) draw(last);
  }

  function draw(result) {
    last = result;
    var data = result && (result.structuredContent || result.structured_content);
    if (result && result.isError) {
      status.textContent = (result.content && result.content[0] && result.content[0].text) || "the tool failed";
      return;
    }
    if (!data) { status.textContent = "no structured result to draw"; return; }
    status.textContent = "";
    try {
      TM.render(root, KIND, data);
    } catch (err) {
      status.textContent = "could not draw this answer: " + err.message;
      throw err;
    }
    resized();
  }

  function resized() {
    var h = Math.ceil(document.documentElement.scrollHeight), w = Math.ceil(document.documentElement.scrollWidth);
    var key = w + "x" + h;
    if (key !== lastSize) { lastSize = key; notify("ui/notifications/size-changed", { width: w, height: h }); }
  }
  if (window.ResizeObserver) new ResizeObserver(resized).observe(document.documentElement);

  window.addEventListener("message", function (ev) {
    if (ev.source !== window.parent) return;
    var m = ev.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined && m.id !== undefined && pending[m.id]) {
      var p = pending[m.id];
      delete pending[m.id];
      if (m.error) p.reject(new Error(m.error.message || "host error")); else p.resolve(m.result);
      return;
    }
    switch (m.method) {
      case "ui/notifications/tool-input":
        status.textContent = "running…";
        break;
      case "ui/notifications/tool-input-partial":
        break;
      case "ui/notifications/tool-result":
        draw(m.params);
        break;
      case "ui/notifications/tool-cancelled":
        status.textContent = "cancelled";
        break;
      case "ui/notifications/host-context-changed":
        applyContext(m.params);
        break;
      case "ui/resource-teardown":
      case "ping":
        if (m.id !== undefined) reply(m.id, {});
        break;
      default:
        if (m.id !== undefined) post({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found" } });
    }
  });

  request("ui/initialize", {
    appInfo: { name: "telemetry-mcp " + KIND + " view", version: VERSION },
    appCapabilities: { availableDisplayModes: ["inline"] },
    protocolVersion: "2026-01-26",
  }).then(function (res) {
    applyContext(res && res.hostContext);
    notify("ui/notifications/initialized", {});
  }, function (err) {
    status.textContent = "the host refused ui/initialize: " + err.message;
  });
})();
