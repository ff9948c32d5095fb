// /dev/chat without reloads: forms post in the background, and what the bot sends is
// pushed over server-sent events as it leaves the outbox. Without JavaScript the same
// forms post and the page reloads; the server renders every bubble either way.
"use strict";

(function () {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const messages = document.getElementById("messages");
  const query = chat.dataset.query;

  function scrollDown() {
    window.requestAnimationFrame(function () {
      messages.scrollTop = messages.scrollHeight;
      const end = document.getElementById("end");
      if (end) end.scrollIntoView({ block: "end" });
    });
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content.firstElementChild;
  }

  function add(item, replacing) {
    if (document.getElementById(item.id)) return;
    const hint = messages.querySelector(".hint");
    if (hint) hint.remove();
    const node = fragment(item.html);
    if (replacing) replacing.replaceWith(node);
    else messages.appendChild(node);
    scrollDown();
  }

  function pending(form) {
    const node = document.createElement("div");
    node.className = "msg me pending";
    const text = document.createElement("div");
    text.className = "text";
    const data = new FormData(form);
    const file = data.get("file");
    const parts = [];
    if (data.get("tap_title")) parts.push("↩ " + data.get("tap_title"));
    if (file && file.name) parts.push("📎 " + file.name);
    if (data.get("text")) parts.push(data.get("text"));
    text.textContent = parts.join("\n");
    node.appendChild(text);
    messages.appendChild(node);
    scrollDown();
    return node;
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("js-send")) return;
    event.preventDefault();
    const body = new FormData(form);
    const file = body.get("file");
    if (!body.get("tap_id") && !body.get("text") && !(file && file.name)) return;
    const bubble = pending(form);
    const list = form.closest("details");
    if (list) list.open = false; // like WhatsApp's list sheet, it closes on a tap
    if (form.id === "compose") {
      form.reset();
      const clip = form.querySelector(".attach");
      if (clip) clip.classList.remove("chosen");
      form.querySelector("input[name=text]").focus();
    }
    fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" } })
      .then(function (res) {
        return res.json().then(function (data) {
          if (!res.ok) throw new Error(data.error || res.statusText);
          if (data.item) add(data.item, bubble);
          else bubble.remove();
        });
      })
      .catch(function (err) {
        bubble.classList.add("failed");
        bubble.querySelector(".text").textContent += "\n⚠ " + err.message;
      });
  });

  // the attach icon shows that a file waits to be sent (the native input is hidden)
  const file = document.querySelector("#compose input[name=file]");
  if (file) {
    file.addEventListener("change", function () {
      const label = file.closest(".attach");
      label.classList.toggle("chosen", file.files.length > 0);
      label.title = file.files.length ? file.files[0].name : label.title;
    });
  }

  // the chat list (unread counts, last messages) and the ticks of this chat, kept fresh
  const people = document.querySelector(".people");
  function refresh() {
    fetch("/dev/chat/people?" + query, { headers: { Accept: "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (people && people.innerHTML !== data.html) people.innerHTML = data.html;
        Object.keys(data.ticks).forEach(function (id) {
          const tick = document.querySelector("#" + id + " .tick");
          if (!tick || tick.classList.contains(data.ticks[id])) return;
          tick.className = "tick " + data.ticks[id];
          tick.title = data.ticks[id];
          tick.textContent = data.ticks[id] === "sent" ? "✓" : "✓✓";
        });
      })
      .catch(function () {});
  }
  window.setInterval(refresh, 1500);

  const after = chat.dataset.after || "0";
  const source = new EventSource("/dev/chat/events?" + query + "&after=" + after);
  source.addEventListener("message", function (event) {
    add(JSON.parse(event.data));
  });
  scrollDown();
})();
