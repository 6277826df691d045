/* Switchboard chat widget. Embed with
 *   <script src="https://<switchboard>/widget.js" data-channel="<public id>" async></script>
 * Optional before it: window.SwitchboardSettings = {user_id, user_hash, name, email, locale}.
 * No framework: a button, a panel, a socket with polling as the fallback. */
(function () {
  "use strict";
  var me = document.currentScript || document.querySelector("script[data-channel]");
  if (!me || window.__switchboardWidget) return;
  window.__switchboardWidget = true;
  var channel = me.getAttribute("data-channel");
  var base = new URL(me.src, location.href).origin;
  var api = base + "/api/v1/widget/" + encodeURIComponent(channel);
  var settings = window.SwitchboardSettings || {};
  var storeKey = "sb_widget_" + channel;
  var T = {
    en: { title: "Chat with us", name: "Your name", email: "Email", start: "Start chat", placeholder: "Type a message…",
      send: "Send", file: "Attach a file", typing: "Agent is typing…", failed: "Not sent — tap to retry", offline: "Reconnecting…" },
    "zh-CN": { title: "在线客服", name: "您的姓名", email: "邮箱", start: "开始对话", placeholder: "请输入消息…",
      send: "发送", file: "发送文件", typing: "客服正在输入…", failed: "发送失败，点击重试", offline: "正在重新连接…" }
  };
  var state = { token: null, cfg: null, seen: {}, last: null, lastEvent: null, ws: null, poll: null, open: false };
  var t = T.en;

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "style") e.style.cssText = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function req(method, path, body, isForm) {
    var h = {};
    if (state.token) h["X-Visitor-Token"] = state.token;
    if (body && !isForm) h["Content-Type"] = "application/json";
    return fetch(api + path, { method: method, headers: h, body: isForm ? body : body ? JSON.stringify(body) : undefined })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.status === 204 ? null : r.json(); });
  }
  function uid() { return Date.now().toString(36) + Math.random().toString(36).slice(2, 10); }

  var root, list, input, typingEl, banner, form;
  function build() {
    var color = state.cfg.color || "#2563eb";
    var host = el("div", { id: "switchboard-widget" });
    var shadow = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    shadow.appendChild(el("style", {}, [
      ".b{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.2);z-index:2147483000}" +
      ".p{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 120px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.2);display:none;flex-direction:column;overflow:hidden;font:14px system-ui,'PingFang SC','Microsoft YaHei',sans-serif;z-index:2147483000}" +
      ".p.o{display:flex}.h{color:#fff;padding:12px 16px;font-weight:600}.l{flex:1;overflow-y:auto;padding:12px;background:#f7f7f8}" +
      ".m{max-width:80%;margin:4px 0;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
      ".in{background:#fff;border:1px solid #e5e7eb}.out{color:#fff;margin-left:auto}.f{font-size:12px;color:#b91c1c;cursor:pointer}" +
      ".r{display:flex;border-top:1px solid #e5e7eb}.r textarea{flex:1;border:0;padding:10px;resize:none;font:inherit;outline:none}" +
      ".r button{border:0;background:none;padding:0 12px;cursor:pointer;font:inherit}.ty{font-size:12px;color:#6b7280;padding:0 12px 4px;min-height:16px}" +
      ".fm{padding:16px;display:flex;flex-direction:column;gap:8px}.fm input{padding:8px;border:1px solid #d1d5db;border-radius:6px;font:inherit}" +
      ".fm button{padding:8px;border:0;border-radius:6px;color:#fff;cursor:pointer;font:inherit}.bn{font-size:12px;background:#fef3c7;padding:4px 12px;display:none}"
    ]));
    var panel = el("div", { class: "p", role: "dialog", "aria-label": state.cfg.name || t.title });
    panel.appendChild(el("div", { class: "h", style: "background:" + color }, [state.cfg.name || t.title]));
    banner = el("div", { class: "bn" }, [t.offline]);
    panel.appendChild(banner);
    list = el("div", { class: "l", "aria-live": "polite" });
    panel.appendChild(list);
    typingEl = el("div", { class: "ty" });
    panel.appendChild(typingEl);
    input = el("textarea", { rows: "2", placeholder: t.placeholder, "aria-label": t.placeholder,
      onkeydown: function (e) { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } else typing(); } });
    var fileIn = el("input", { type: "file", style: "display:none", onchange: function () { if (fileIn.files[0]) sendFile(fileIn.files[0]); fileIn.value = ""; } });
    var row = el("div", { class: "r" }, [input, fileIn,
      el("button", { title: t.file, "aria-label": t.file, onclick: function () { fileIn.click(); } }, ["📎"]),
      el("button", { style: "color:" + color, onclick: send }, [t.send])]);
    panel.appendChild(row);
    if (!state.token && (state.cfg.pre_chat_form || []).filter(Boolean).length && !settings.user_id) {
      var name = el("input", { placeholder: t.name, "aria-label": t.name, value: settings.name || "" });
      var email = el("input", { placeholder: t.email, "aria-label": t.email, type: "email", value: settings.email || "" });
      form = el("div", { class: "fm" }, [name, email, el("button", { style: "background:" + color, onclick: function () {
        session({ name: name.value, email: email.value }).then(function () { form.remove(); row.style.display = ""; input.focus(); });
      } }, [t.start])]);
      row.style.display = "none";
      panel.insertBefore(form, typingEl);
    }
    var btn = el("button", { class: "b", style: "background:" + color, "aria-label": t.title, onclick: function () {
      state.open = !state.open; panel.classList.toggle("o", state.open);
      if (state.open && !form) input.focus();
    } }, ["💬"]);
    shadow.appendChild(btn);
    shadow.appendChild(panel);
    document.body.appendChild(host);
    root = panel;
  }

  function render(m) {
    if (state.seen[m.id]) return update(m);
    state.seen[m.id] = true;
    var out = m.direction === "in";
    var div = el("div", { class: "m " + (out ? "out" : "in"), "data-id": m.id, style: out ? "background:" + (state.cfg.color || "#2563eb") : "" });
    div.appendChild(document.createTextNode(m.content || ""));
    (m.attachments || []).forEach(function (a) { div.appendChild(el("div", { style: "font-size:12px;opacity:.8" }, ["📄 " + a.filename])); });
    list.appendChild(div);
    list.scrollTop = list.scrollHeight;
    if (!state.last || m.id > state.last) state.last = m.id;
    if (m.direction === "out") typingEl.textContent = "";
  }
  function update() {}

  function session(extra) {
    var body = { visitor_token: state.token || "", locale: settings.locale || state.cfg.locale };
    for (var k in extra || {}) if (extra[k]) body[k] = extra[k];
    if (settings.user_id) { body.user_id = settings.user_id; body.user_hash = settings.user_hash; }
    if (settings.name && !body.name) body.name = settings.name;
    if (settings.email && !body.email) body.email = settings.email;
    return req("POST", "/sessions", body).then(function (s) {
      state.token = s.visitor_token;
      try { localStorage.setItem(storeKey, state.token); } catch (e) { /* private mode */ }
      return load().then(connect);
    });
  }
  function load() {
    return req("GET", "/messages?limit=200" + (state.last ? "&cursor=" + state.last : "")).then(function (r) {
      (r.items || []).forEach(render);
    });
  }
  function send() {
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    var body = { content: text, client_id: uid() };
    var go = function () {
      return (state.token ? Promise.resolve() : session()).then(function () { return req("POST", "/messages", body); })
        .then(function (r) { if (r && r.id) render({ id: r.id, direction: "in", content: text, attachments: [] }); })
        .catch(function () {
          var f = el("div", { class: "f", onclick: function () { f.remove(); go(); } }, [text + " — " + t.failed]);
          list.appendChild(f);
        });
    };
    go();
  }
  function sendFile(file) {
    var fd = new FormData();
    fd.append("file", file);
    fd.append("client_id", uid());
    (state.token ? Promise.resolve() : session()).then(function () { return req("POST", "/messages", fd, true); }).then(load);
  }
  var typingAt = 0;
  function typing() {
    if (!state.token || Date.now() - typingAt < 3000) return;
    typingAt = Date.now();
    req("POST", "/typing").catch(function () {});
  }

  var backoff = 1000;
  function connect() {
    if (!("WebSocket" in window)) return startPolling();
    var url = api.replace(/^http/, "ws") + "/ws?token=" + encodeURIComponent(state.token) + (state.lastEvent ? "&since=" + state.lastEvent : "");
    var ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = function () { backoff = 1000; stopPolling(); banner.style.display = "none"; load(); };
    ws.onmessage = function (e) {
      var ev;
      try { ev = JSON.parse(e.data); } catch (x) { return; }
      if (ev.id) state.lastEvent = ev.id;
      if (ev.kind === "message.created" && ev.payload) render(ev.payload);
      else if (ev.kind === "typing" && ev.payload && ev.payload.author_kind !== "contact") {
        typingEl.textContent = t.typing;
        setTimeout(function () { typingEl.textContent = ""; }, 4000);
      }
    };
    ws.onclose = function () {
      state.ws = null;
      banner.style.display = "block";
      startPolling();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }
  function startPolling() { if (!state.poll) state.poll = setInterval(function () { load().catch(function () {}); }, 3000); }
  function stopPolling() { if (state.poll) { clearInterval(state.poll); state.poll = null; } }

  fetch(api + "/config").then(function (r) { return r.json(); }).then(function (cfg) {
    state.cfg = cfg;
    t = T[settings.locale || cfg.locale] || (navigator.language.indexOf("zh") === 0 ? T["zh-CN"] : T.en);
    try { state.token = localStorage.getItem(storeKey); } catch (e) { /* private mode */ }
    build();
    if (state.token || settings.user_id) session().catch(function () { state.token = null; });
    if (cfg.welcome_text) list.appendChild(el("div", { class: "m in" }, [cfg.welcome_text]));
  });
})();
