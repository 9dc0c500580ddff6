// The sandbox console: polls /_console/api/state, renders chats as WeCom shows them, and
// fires real callbacks through /_console/api/* (the server signs and encrypts them).
"use strict";

const ui = { member: null, tab: "app", version: "", doc: null, live: {}, refreshing: new Set() };
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const list = (v) => (Array.isArray(v) ? v : v ? [v] : []);
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

// -- talking to the server ----------------------------------------------------------------------

async function post(path, body) {
  const notice = $("notice");
  notice.className = "notice";
  notice.textContent = "sending…";
  try {
    const res = await fetch(`/_console/api/${path}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
    notice.textContent = `HTTP ${data.status} in ${data.ms} ms` +
      (data.reply ? ` — passive reply: ${data.reply.MsgType || data.reply.msgtype || "yes"}` : " — no passive reply");
    poll();
    return data;
  } catch (err) {
    notice.className = "notice error";
    notice.textContent = `Not sent: ${err.message}`;
    return null;
  }
}

async function poll() {
  try {
    const res = await fetch("/_console/api/state", { cache: "no-store" });
    const doc = await res.json();
    $("mode").textContent = (doc.sandbox ? "sandbox" : "console on a configured server") +
      (doc.emulator.url ? ` · emulator ${doc.emulator.url}` : "") +
      (doc.emulator.error ? ` · ${doc.emulator.error}` : "");
    if (doc.version !== ui.version) {
      ui.version = doc.version;
      ui.doc = doc;
      render();
    }
  } catch (err) {
    $("mode").textContent = `server unreachable (${err.message}); retrying`;
  }
}

// -- rendering ----------------------------------------------------------------------------------

// Each part is rebuilt only when what it shows changed, and keyboard focus is put back on
// the same control afterwards, so polling never pulls focus from under the keyboard.
const shown = {};
function changed(part, ...inputs) {
  const key = JSON.stringify(inputs);
  if (shown[part] === key) return false;
  shown[part] = key;
  return true;
}

function focusKey(el) {
  if (!el || el === document.body) return null;
  const article = el.closest("article[data-id]");
  for (const name of ["data-card-key", "data-key", "data-member", "data-question"]) {
    if (el.hasAttribute(name)) return [article ? article.dataset.id : "", name, el.getAttribute(name)];
  }
  return null;
}

function keepFocus(update) {
  const before = focusKey(document.activeElement);
  update();
  if (!before || focusKey(document.activeElement)) return;
  const [articleId, name, value] = before;
  const scope = articleId ? document.querySelector(`article[data-id="${CSS.escape(articleId)}"]`) : document;
  const again = scope && scope.querySelector(`[${name}="${CSS.escape(value)}"]`);
  if (again) again.focus();
}

function render() {
  const doc = ui.doc;
  if (!ui.member) ui.member = doc.members[0];
  $("tab-bot").hidden = !doc.bots.length;
  keepFocus(() => {
    if (changed("members", doc.members, doc.bots, ui.member, ui.tab)) renderMembers(doc);
    const items = (ui.tab === "app" ? doc.chats : doc.bot_chats)[ui.member] || [];
    if (changed("chat", items, ui.member, ui.tab, ui.live)) renderChat(doc);
    if (changed("menu", doc.menu, doc.apps, ui.member, ui.tab)) renderMenu(doc);
    if (changed("timeline", doc.timeline, doc.dead_letters, ui.member)) renderTimeline(doc);
  });
  resumeStreams(doc);
}

function renderMembers(doc) {
  $("members").replaceChildren(...doc.members.map((m) => h("li", {},
    h("button", { type: "button", "aria-current": m === ui.member ? "true" : "false",
      "data-member": m, onclick: () => { ui.member = m; render(); } }, m))));
  $("text-label").textContent = ui.tab === "app"
    ? `Message to the app as ${ui.member}` : `Message to the AI bot ${doc.bots[0] || ""} as ${ui.member}`;
}

function renderChat(doc) {
  const log = $("log");
  const items = (ui.tab === "app" ? doc.chats : doc.bot_chats)[ui.member] || [];
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.replaceChildren(...(items.length ? items.map(renderItem)
    : [h("p", { class: "meta", text: ui.tab === "app"
      ? "No messages yet: click a menu button or send a text." : "Say something to the AI bot." })]));
  if (atBottom || items.length) log.scrollTop = log.scrollHeight;
}

function renderItem(item) {
  const who = item.sender === "member" ? ui.member : item.app;
  const how = item.via === "passive" ? "passive reply" : item.via === "pushed" ? "send API" : "";
  const classes = ["msg", item.sender, item.msgtype === "event" ? "event" : "", item.recalled ? "recalled" : ""];
  return h("article", { class: classes.join(" "), "data-id": item.id, "data-msgtype": item.msgtype,
    "data-sender": item.sender, "aria-label": `${who}, ${item.msgtype}` },
  h("span", { class: "meta" }, `${who} · ${clock(item.at)}${how ? " · " + how : ""}`,
    item.updated ? h("span", { class: "badge updated" }, " updated") : null),
  item.recalled ? h("div", { class: "bubble", text: "This message was recalled." }) : body(item));
}

function body(item) {
  const c = item.content || {};
  switch (item.msgtype) {
    case "text": return h("div", { class: "bubble", text: c.content });
    case "markdown": return h("div", { class: "bubble md" }, markdown(c.content || ""));
    case "event": return h("div", { class: "bubble" }, eventText(c));
    case "stream": {
      const live = ui.live[c.stream_id];
      const shown = live && live.content.length >= (c.content || "").length ? live : c;
      const done = shown.finished || shown.finish;
      return h("div", { class: "bubble" + (done ? "" : " typing"), "data-stream": c.stream_id,
        "data-finished": done ? "true" : "false", text: shown.content || "…" });
    }
    case "textcard": return h("div", { class: "card" }, h("div", { class: "title", text: c.title }),
      h("div", { class: "desc", text: stripTags(c.description) }), link(c.url, c.btntxt || "Details"));
    case "news": case "mpnews": return h("div", { class: "card" }, list(c.articles).map((a) =>
      h("div", {}, h("div", { class: "title", text: a.title }),
        h("div", { class: "desc", text: stripTags(a.description || a.digest || a.content || "") }),
        link(a.url || a.content_source_url, "Open"))));
    case "miniprogram_notice": return notice(c);
    case "template_card": return card(item, c);
    default: return h("div", { class: "bubble", text: `[${item.msgtype}] ${summary(c)}` });
  }
}

function eventText(c) {
  if (c.event === "click") return `Clicked menu: ${c.key}`;
  if (c.event === "template_card_event") {
    const picks = Object.entries(c.selected || {}).map(([q, o]) => `${q}=${o.join(",")}`).join(" ");
    return `Clicked card button ${c.key}${picks ? " (" + picks + ")" : ""}`;
  }
  return `${c.event}${c.key ? " " + c.key : ""}`;
}

function summary(c) {
  return Object.entries(c).slice(0, 3).map(([k, v]) => `${k}: ${typeof v === "object" ? "…" : v}`).join(", ");
}
function stripTags(text) { return String(text || "").replace(/<br\s*\/?>|<\/div>/gi, "\n").replace(/<[^>]*>/g, ""); }
function link(url, label) {
  return url ? h("span", { class: "link", title: url }, `${label} → ${url}`) : null;
}

function notice(c) {
  const rows = list(c.content_item);
  return h("div", { class: "card", "data-kind": "miniprogram_notice" },
    h("div", { class: "source" }, `Mini program ${c.appid || ""}`),
    h("div", { class: "title", text: c.title }),
    c.description ? h("div", { class: "desc", text: c.description }) : null,
    h("dl", { class: "rows" + (c.emphasis_first_item ? " emph" : "") },
      rows.map((r) => [h("dt", { text: r.key }), h("dd", { text: r.value })])),
    c.page ? h("div", { class: "link", text: `Opens ${c.page}` }) : null);
}

function card(item, c) {
  const live = item.via === "pushed" && item.msgid && !c.replace_name && !item.recalled;
  const fire = (key, extra) => post("card", { app: item.app, member: ui.member, msgid: item.msgid,
    key, selected: extra });
  const node = h("div", { class: "card", "data-kind": c.card_type, "data-task": c.task_id });
  const t = c.main_title || {};
  const add = (...parts) => node.append(...parts.flat(Infinity).filter((x) => x !== "" && x != null));
  add(
    c.source ? h("div", { class: "source", text: c.source.desc || "" }) : "",
    h("div", { class: "title", text: t.title || "" }), t.desc ? h("div", { class: "desc", text: t.desc }) : "",
    c.emphasis_content ? h("div", {}, h("div", { class: "emphasis", text: c.emphasis_content.title || "" }),
      h("div", { class: "desc", text: c.emphasis_content.desc || "" })) : "",
    c.quote_area ? h("div", { class: "quote", text: `${c.quote_area.title || ""} ${c.quote_area.quote_text || ""}` }) : "",
    c.sub_title_text ? h("div", { class: "sub", text: c.sub_title_text }) : "",
    list(c.horizontal_content_list).length ? h("dl", { class: "rows" },
      list(c.horizontal_content_list).map((r) => [h("dt", { text: r.keyname }), h("dd", { text: r.value || r.url || "" })])) : "",
    list(c.vertical_content_list).map((r) => h("div", {}, h("strong", { text: r.title }), " ", r.desc || "")),
    list(c.jump_list).map((j) => link(j.url || j.pagepath, j.title)),
    c.card_image ? h("div", { class: "link", text: `[image ${c.card_image.url || ""}]` }) : "");
  const form = h("div", { class: "actions" });
  const answers = () => {
    const picked = {};
    node.querySelectorAll("[data-question]").forEach((el) => {
      const q = el.dataset.question;
      picked[q] = picked[q] || [];
      if ((el.type === "checkbox" || el.type === "radio") ? el.checked : el.tagName === "SELECT") picked[q].push(el.value);
    });
    return picked;
  };
  if (c.checkbox) {
    const multi = Number(c.checkbox.mode) === 1;
    node.append(h("fieldset", { role: multi ? "group" : "radiogroup" }, h("legend", { text: "Vote" }),
      list(c.checkbox.option_list).map((o) => h("label", { style: "display:block" },
        h("input", { type: multi ? "checkbox" : "radio", name: `${item.id}-${c.checkbox.question_key}`, value: o.id,
          "data-question": c.checkbox.question_key, checked: o.is_checked, disabled: !live }), " ", o.text))));
  }
  for (const s of list(c.select_list).concat(c.button_selection ? [c.button_selection] : [])) {
    const id = `${item.id}-${s.question_key}`;
    node.append(h("label", { for: id, text: s.title || s.question_key }),
      h("select", { id, "data-question": s.question_key, disabled: !live },
        list(s.option_list).map((o) => h("option", { value: o.id, selected: o.id === s.selected_id, text: o.text }))));
  }
  if (c.replace_name) {
    form.append(h("button", { type: "button", disabled: true, "data-replaced": "true" }, c.replace_name));
  } else {
    for (const b of list(c.button_list)) {
      form.append(h("button", { type: "button", class: Number(b.style) === 1 ? "primary" : "",
        "data-card-key": b.key, disabled: !live, "aria-label": `${b.text} (card button)`,
        onclick: () => fire(b.key, answers()) }, b.text));
    }
    if (c.submit_button) {
      form.append(h("button", { type: "button", class: "primary", "data-card-key": c.submit_button.key,
        disabled: !live, onclick: () => fire(c.submit_button.key, answers()) }, c.submit_button.text || "Submit"));
    }
    for (const a of list((c.action_menu || {}).action_list)) {
      form.append(h("button", { type: "button", "data-card-key": a.key, disabled: !live,
        onclick: () => fire(a.key, {}) }, `⋯ ${a.text}`));
    }
  }
  if (form.childElementCount) node.append(form);
  if (c.card_action && (c.card_action.url || c.card_action.pagepath)) node.append(link(c.card_action.url || c.card_action.pagepath, "Opens"));
  return node;
}

// WeCom's markdown subset, built as DOM nodes (never as HTML from the message).
function markdown(text) {
  const out = [];
  for (const line of String(text).split("\n")) {
    let m;
    if ((m = line.match(/^(#{1,6})\s+(.*)$/))) out.push(h("h4", {}, inline(m[2])));
    else if ((m = line.match(/^>\s?(.*)$/))) out.push(h("blockquote", {}, inline(m[1])));
    else if ((m = line.match(/^\s*[-*]\s+(.*)$/))) out.push(h("div", {}, "• ", inline(m[1])));
    else out.push(h("div", {}, inline(line) || "\u00a0"));
  }
  return out;
}
function inline(text) {
  const parts = [];
  const re = /\*\*(.+?)\*\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|<font color="(info|comment|warning)">(.*?)<\/font>/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    if (m[1]) parts.push(h("strong", { text: m[1] }));
    else if (m[2]) parts.push(h("code", { text: m[2] }));
    else if (m[3]) parts.push(h("span", { class: "link", title: m[4], text: `${m[3]} → ${m[4]}` }));
    else parts.push(h("span", { class: m[5], text: m[6] }));
    last = re.lastIndex;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function renderMenu(doc) {
  const menu = $("menu");
  if (ui.tab !== "app") { menu.replaceChildren(); menu.hidden = true; return; }
  menu.hidden = false;
  const app = doc.apps[0];
  menu.replaceChildren(...doc.menu.filter((b) => !b.app || b.app === app).map((b) =>
    h("button", { type: "button", "data-key": b.key, title: `${b.key} → ${b.handler}`,
      "aria-label": `Menu: ${b.label} (${b.key})`, onclick: () => post("click", { app: b.app || app, member: ui.member, key: b.key }) },
    b.label)));
}

function renderTimeline(doc) {
  $("timeline").replaceChildren(...doc.timeline.map((e) => h("tr", { class: e.member === ui.member ? "mine" : "", "data-key": e.key },
    h("td", { text: clock(e.received_at) }), h("td", { text: e.member }), h("td", { text: `${e.app}: ${e.what}` }),
    h("td", {}, e.route, h("br"), h("code", { text: e.handler || "—" })),
    h("td", { text: e.took_ms === null ? "…" : `${e.took_ms} ms` }),
    h("td", { class: "answer", text: e.answer }),
    h("td", { text: String(e.retries) }),
    h("td", {}, e.outbox.length ? e.outbox.map((o) => h("div", { class: `state-${o.state}` },
      `${o.api} ${o.state}${o.failed ? `, ${o.failed} failed attempt(s)` : ""}` +
      `${o.parts > 1 ? `, part ${o.parts_done}/${o.parts}` : ""}${o.error ? ": " + o.error : ""}`)) : "—"))));
  const dead = doc.dead_letters;
  $("dead").replaceChildren(...(dead.length ? dead.map((d) => h("li", { class: "state-dead" },
    `${d.id} (${d.app}, ${d.api}): ${d.error} — wecom outbox retry|drop ${d.id}`)) : [h("li", { text: "none" })]));
}

// -- AI-bot streams: WeCom's client asks for the stream about once a second -------------------

function follow(bot, member, streamId) {
  if (ui.refreshing.has(streamId)) return;
  ui.refreshing.add(streamId);
  const step = async () => {
    const res = await fetch("/_console/api/bot/refresh", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ bot, member, stream_id: streamId }) }).catch(() => null);
    const data = res && res.ok ? await res.json() : null;
    const stream = data && data.reply && data.reply.stream;
    if (stream) { ui.live[streamId] = stream; if (ui.doc) render(); }
    if (stream && !stream.finish) setTimeout(step, 1000);
    else { ui.refreshing.delete(streamId); poll(); }
  };
  setTimeout(step, 1000);
}

function resumeStreams(doc) {
  for (const [member, items] of Object.entries(doc.bot_chats)) {
    for (const item of items) {
      const c = item.content || {};
      const live = ui.live[c.stream_id];
      if (item.msgtype === "stream" && !c.finished && !(live && live.finish)) follow(item.app, member, c.stream_id);
    }
  }
}

// -- controls -----------------------------------------------------------------------------------

function selectTab(tab) {
  ui.tab = tab;
  for (const b of document.querySelectorAll("[role=tab]")) {
    const on = b.dataset.tab === tab;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  }
  $("text").placeholder = tab === "app" ? "help, echo hi, order 42, ask why?" : "what is WeCom?";
  if (ui.doc) render();
}

document.addEventListener("DOMContentLoaded", () => {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((b, n) => {
    b.addEventListener("click", () => selectTab(b.dataset.tab));
    b.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
      const next = tabs[(n + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      selectTab(next.dataset.tab);
    });
  });
  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text || !ui.doc) return;
    input.value = "";
    if (ui.tab === "app") {
      await post("text", { app: ui.doc.apps[0], member: ui.member, text });
    } else {
      const bot = ui.doc.bots[0];
      const data = await post("bot", { bot, member: ui.member, text });
      const stream = data && data.reply && data.reply.stream;
      if (stream) { ui.live[stream.id] = stream; if (!stream.finish) follow(bot, ui.member, stream.id); }
    }
    input.focus();
  });
  poll();
  setInterval(poll, 800);
});
