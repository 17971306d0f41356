// Keyboard shortcuts for the labelling page, upload progress, and a banner when the server is unreachable.
(function () {
  "use strict";

  let answering = false;
  let cardSwappedAt = 0;  // when the latest card came in (htmx:afterSwap on #work, below)
  const NEW_CARD_KEY_MS = 250;  // no one reads a card and answers it faster

  function typingInField(event) {
    const t = event.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  document.addEventListener("keydown", function (event) {
    const page = document.querySelector(".label-page");
    if (!page || typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const help = document.getElementById("help");
    if (event.key === "?") {
      event.preventDefault();
      if (help.open) help.close(); else help.showModal();
      return;
    }
    if (help && help.open) return;
    const key = event.key === "Backspace" ? "u" : event.key.toLowerCase();
    // One answer at a time: a key pressed while the previous answer is on its way is ignored,
    // so a held or doubled key never answers the next card by accident.
    if (answering || event.repeat) return;
    const work = document.getElementById("work");
    const button = work.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!button) return;
    event.preventDefault();
    // On a fast server the answer is back in 20 ms, and a double tap's second press (80-150 ms
    // later, QA) would answer a card no one has read. Undo is left out: u u means two undos.
    if (key !== "u" && Date.now() - cardSwappedAt < NEW_CARD_KEY_MS) return;
    button.classList.add("pressed");
    answering = true;
    // htmx.ajax rather than button.click(): htmx wires up swapped-in buttons only after its settle
    // delay, and a fast annotator's key must not fall into that gap.
    const verb = button.hasAttribute("hx-get") ? "GET" : "POST";  // "keep my answer" only fetches the next card
    htmx.ajax(verb, button.getAttribute("hx-get") || button.getAttribute("hx-post"),
              {source: button, target: "#work", swap: "innerHTML"})
      .catch(function () {})  // a failed send is handled by the htmx:sendError listener below
      .finally(function () { answering = pending !== null; });  // still blocked while an answer waits to be sent
  });

  document.addEventListener("click", function (event) {
    const trigger = event.target.closest('[data-action="help"]');
    if (trigger) document.getElementById("help").showModal();
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    const bar = document.getElementById("upload-progress");
    if (!bar || !event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });

  // While an upload's request is open, poll how far the server has got with the file (rows read and
  // stored): a 1M-row file takes up to a minute on the server after its last byte was sent.
  let uploadPoll = null;
  function sizeText(bytes) {  // as app/main.py size_text
    for (const [unit, size] of [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]]) {
      if (bytes >= size) {
        const value = bytes / size;
        return (value >= 10 || value === Math.floor(value) ? value.toFixed(0) : value.toFixed(1)) + " " + unit;
      }
    }
    return bytes + " bytes";
  }
  document.addEventListener("submit", function (event) {  // capture phase: before htmx reads the form
    const form = event.target;
    if (!form || form.id !== "upload-form") return;
    const file = form.elements.file.files[0];
    const limit = Number(form.dataset.maxBytes);
    if (file && limit && file.size > limit) {  // no point sending it: say so at once
      event.preventDefault();
      event.stopPropagation();  // htmx listens on the form, below this capture listener
      const result = document.getElementById("upload-result");
      const p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = `${file.name} is ${sizeText(file.size)}, larger than this server's upload limit of ` +
        `${sizeText(limit)}: split it into smaller files and upload them one after the other.`;
      if (result) result.replaceChildren(p);
      return;
    }
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    form.elements.progress_token.value = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }, true);
  document.addEventListener("htmx:beforeSend", function (event) {
    const form = event.detail.elt;
    const status = document.getElementById("upload-status");
    if (!form || form.id !== "upload-form" || !status) return;
    const url = status.dataset.progressUrl + form.elements.progress_token.value;
    clearInterval(uploadPoll);
    uploadPoll = setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then((r) => (r.ok ? r.text() : null))
        .then((html) => { if (html !== null && uploadPoll !== null) status.innerHTML = html; })
        .catch(function () {});
    }, 500);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== "upload-form") return;
    clearInterval(uploadPoll);
    uploadPoll = null;
    const status = document.getElementById("upload-status");
    if (status) status.innerHTML = "";
    const bar = document.getElementById("upload-progress");
    if (bar) bar.hidden = true;
  });

  // As soon as a file is chosen (and whenever a column name is edited), show what it would import:
  // its first rows and the part each column plays. Only the head of the file is sent.
  const PREVIEW_BYTES = 128 * 1024;  // app/pool/preview.py HEAD_BYTES
  const PARQUET_PREVIEW_BYTES = 900 * 1024;  // and PARQUET_PREVIEW_BYTES
  let previewTimer = null;
  let previewAsked = 0;  // only the newest answer is shown: an older, slower one must not replace it
  function showPreview(form) {
    const target = document.getElementById("upload-preview");
    const file = form.elements.file.files[0];
    if (!target || !file) { if (target) target.innerHTML = ""; return; }
    const data = new FormData();
    // a Parquet file's columns and a .zip's list of files are at their end: such a file is sent whole
    // when small (PARQUET_PREVIEW_BYTES)
    const parquet = /\.(parquet|pq|zip)$/i.test(file.name);
    const limit = parquet ? PARQUET_PREVIEW_BYTES : PREVIEW_BYTES;
    data.append("head", file.size > limit ? file.slice(0, parquet ? 0 : limit) : file, "head");
    data.append("filename", file.name);
    data.append("partial", file.size > limit ? "true" : "false");
    for (const name of ["text_column", "id_column", "label_column", "feature_columns", "embedding_column"]) {
      if (form.elements[name]) data.append(name, form.elements[name].value);
    }
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    const asked = ++previewAsked;
    fetch(target.dataset.previewUrl, {method: "POST", body: data, headers: headers, credentials: "same-origin"})
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => { if (html !== null && asked === previewAsked) target.innerHTML = html; })
      .catch(function () {});
  }
  document.addEventListener("change", function (event) {
    const form = event.target.form;
    if (form && form.id === "upload-form" && event.target.name === "file") showPreview(form);
  });
  document.addEventListener("input", function (event) {
    const form = event.target.form;
    if (!form || form.id !== "upload-form" || event.target.name === "file") return;
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () { showPreview(form); }, 400);
  });
  // The preview's offer to import a column that holds the project's labels: it names that column as
  // the Label column, and the preview follows.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-label-column]");
    const form = document.getElementById("upload-form");
    if (!button || !form || !form.elements.label_column) return;
    form.elements.label_column.value = button.dataset.labelColumn;
    showPreview(form);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (form && form.id === "upload-form" && event.detail.successful) {
      const target = document.getElementById("upload-preview");
      if (target) target.innerHTML = "";  // the result says what was imported
    }
  });

  // A double click answers once: the second click of a pair lands on the next card's button, just
  // swapped in under the pointer (keys are guarded by `answering` and NEW_CARD_KEY_MS). Clicks in the first moment of a
  // new card are ignored; capture phase, before htmx's listener on the button sees them.
  const NEW_CARD_MS = 400;
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "work") {
      cardSwappedAt = Date.now();
      focusItem();
    }
  });
  // The item has the focus when its card arrives, so the arrow keys, Page Down and Space scroll a long
  // one in place (the label keys work wherever the focus is).
  function focusItem() {
    const body = document.getElementById("item-body");
    if (body && !typingInField({target: document.activeElement})) body.focus({preventScroll: true});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", focusItem);
  else focusItem();
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("#work button");
    if (button && Date.now() - cardSwappedAt < NEW_CARD_MS) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // The page going away (tab closed, another page opened, a reload) lets its card go at once, so
  // other annotators get it now rather than when its lease runs out; coming back within a minute
  // finds the same card if no one took it. Not while an answer waits to be sent (it names that
  // card), and not while another tab of this browser shows the same card (QA: closing the second
  // of two tabs gave away the card the first still showed): each label tab notes its card in
  // localStorage, refreshed every minute, so a tab that died without a word stops counting.
  const tabId = Math.random().toString(36).slice(2);
  const TAB_KEY = "labelloop.card." + tabId;
  const TAB_FRESH_MS = 150000;
  function shownCard() {
    const page = document.querySelector(".label-page");
    const card = document.querySelector("#work #card[data-held-until]");
    return page && card ? {project: page.dataset.project, item: card.dataset.item, heldUntil: card.dataset.heldUntil}
      : null;
  }
  function noteCard() {
    const card = shownCard();
    try {
      if (card) localStorage.setItem(TAB_KEY, JSON.stringify({...card, at: Date.now()}));
      else localStorage.removeItem(TAB_KEY);
    } catch (e) { /* storage off: each tab judges alone */ }
  }
  function shownInAnotherTab(card) {
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith("labelloop.card.") || key === TAB_KEY) continue;
        const other = JSON.parse(localStorage.getItem(key) || "null");
        if (!other || Date.now() - other.at > TAB_FRESH_MS) continue;
        if (other.project === card.project && other.item === card.item) return true;
      }
    } catch (e) { /* storage off or a foreign value: no other tab known */ }
    return false;
  }
  if (document.querySelector(".label-page")) {
    noteCard();
    setInterval(noteCard, 60000);
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "work") noteCard();
  });
  window.addEventListener("pagehide", function () {
    const card = shownCard();
    try { localStorage.removeItem(TAB_KEY); } catch (e) { /* storage off */ }
    if (!card || pending || !navigator.sendBeacon || shownInAnotherTab(card)) return;
    const form = new FormData();
    form.append("csrf_token", JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "");
    form.append("held_until", card.heldUntil);
    navigator.sendBeacon("/projects/" + encodeURIComponent(card.project) + "/release", form);
  });
  // Back from the browser's page cache, the card shown was let go as the page left: ask for it again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.querySelector(".label-page #card[data-held-until]")) location.reload();
  });

  // The server out of reach: an answer given on the label page is kept here and sent again every few
  // seconds until it goes through (the server treats a repeat of the same answer as one), and no
  // other key is taken meanwhile, so answers arrive in the order they were given.
  const banner = () => document.getElementById("connection-error");
  let pending = null;
  function showBanner(text) {
    const b = banner();
    b.textContent = text;
    b.hidden = false;
  }
  function retryPending() {
    if (!pending) return;
    htmx.ajax("POST", pending.path, {target: "#work", swap: "innerHTML", values: pending.values})
      .catch(function () {});  // tried again in a moment
  }
  // Kept and sent again: an answer that did not reach the server, or that a proxy in front of it
  // turned away while the app restarts (502, 503, 504). Returns whether one is waiting.
  function keepAnswer(elt) {
    const path = elt && elt.closest && elt.closest("#work") ? elt.getAttribute("hx-post") : null;
    if (path && !pending) {
      pending = {path: path, values: JSON.parse(elt.getAttribute("hx-vals") || "{}"),
                 timer: setInterval(retryPending, 3000)};
      answering = true;
    }
    return pending !== null;
  }
  // (an undo is kept too: it names the answer it takes back, so sending it again undoes nothing more)
  const kept = () => "The server could not be reached. Your last " +
    (pending && pending.path.endsWith("/undo") ? "undo" : "answer") +
    " is kept in this page and sent as soon as the server is back; keep the page open.";
  document.addEventListener("htmx:sendError", function (event) {
    showBanner(keepAnswer(event.detail.elt) ? kept()
      : "The server could not be reached; the page carries on when it is back.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    if ([502, 503, 504].includes(status) && keepAnswer(event.detail.elt)) {
      showBanner(kept());
      return;
    }
    showBanner("The server could not handle that request; reload the page to carry on.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    if (pending && event.detail.pathInfo && event.detail.pathInfo.requestPath === pending.path) {
      clearInterval(pending.timer);
      pending = null;
      answering = false;
    }
    if (!pending) banner().hidden = true;
  });
})();
