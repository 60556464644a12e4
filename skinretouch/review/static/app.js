// skinretouch review page: list of processed photos, and a before/after view to correct one.
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const KIND_COLORS = { papule: "#ff5a5a", pustule: "#ffd23f", dark_spot: "#c77dff", blackhead: "#3fe0ff", user_mask: "#5dff8f" };

  let photos = [], shown = [], selected = 0;
  let current = null;
  let view = { scale: 1, tx: 0, ty: 0 };
  let split = 0.5;
  let decision = { rejected: new Set(), kept: new Set(), strokes: [] };
  let saved = "";
  let tool = "select";
  let focusedRegion = null;
  let busy = false;
  const tiles = { before: new Map(), after: new Map() };
  window.reviewTimings = [];

  // ---------- server ----------
  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    };
    const response = await fetch(path, { credentials: "same-origin", ...init });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  function say(text, isError = false) {
    $("message").textContent = text;
    $("message").classList.toggle("error", isError);
  }

  // ---------- list ----------
  async function loadList() {
    const data = await api("/api/photos");
    photos = data.photos;
    renderList();
  }

  function renderList() {
    const needsOnly = $("filter-needs-review").checked;
    shown = photos.filter((p) => !needsOnly || p.needs_review);
    selected = Math.min(selected, Math.max(0, shown.length - 1));
    const body = document.querySelector("#photo-table tbody");
    body.replaceChildren(...shown.map((p, i) => {
      const row = document.createElement("tr");
      row.dataset.key = p.key;
      row.classList.toggle("selected", i === selected);
      const flags = [];
      if (p.failed) flags.push(badge("failed", "failed"));
      if (p.hard_cases) flags.push(badge("hard", `${p.hard_cases} hard`));
      if (p.fallbacks) flags.push(badge("fallback", `${p.fallbacks} fallback`));
      row.append(
        cell(p.name, p.folder),
        cell(badge(p.status === "ok" ? "ok" : "failed", p.status), p.error || ""),
        cell(badge(p.review || "todo", p.review || (p.needs_review ? "needs review" : "-"))),
        cell(String(p.spots)),
        cell(...flags),
      );
      row.addEventListener("click", () => { selected = i; openSelected(); });
      return row;
    }));
    $("list-count").textContent = `${shown.length} of ${photos.length} photos`;
    $("list-empty").hidden = shown.length > 0;
    const row = body.children[selected];
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  function cell(...content) {
    const td = document.createElement("td");
    const title = typeof content[content.length - 1] === "string" && content.length === 2 ? content.pop() : "";
    td.append(...content);
    if (title) td.title = title;
    return td;
  }

  function badge(kind, text) {
    const span = document.createElement("span");
    span.className = `badge ${kind}`;
    span.textContent = text;
    return span;
  }

  function openSelected() {
    if (shown[selected]) location.hash = `#/photo/${encodeURIComponent(shown[selected].key)}`;
  }

  async function approveAll() {
    const keys = shown.filter((p) => !p.review && p.status === "ok").map((p) => p.key);
    if (!keys.length) return;
    if (!confirm(`Approve the automatic result of ${keys.length} photo(s)?`)) return;
    await api("/api/approve-all", { keys });
    await loadList();
  }

  // ---------- photo view ----------
  async function openPhoto(key) {
    const started = performance.now();
    $("list-view").hidden = true;
    $("photo-view").hidden = false;
    say("");
    const detail = await api(`/api/photo?p=${encodeURIComponent(key)}`);
    const index = shown.findIndex((p) => p.key === key);
    if (index >= 0) selected = index;
    setTool("select");
    await showDetail(detail, { refit: true });
    const ms = performance.now() - started;
    window.reviewTimings.push({ key, ms });
    $("timing").textContent = `opened in ${ms.toFixed(0)} ms (${detail.width}×${detail.height})`;
    $("viewport").focus();
  }

  async function showDetail(detail, { refit }) {
    current = detail;
    decision = {
      rejected: new Set(detail.decision.rejected),
      kept: new Set(detail.decision.kept),
      strokes: detail.decision.strokes.map((s) => ({ radius: s.radius, points: s.points.map((p) => [...p]) })),
    };
    saved = decisionKey();
    $("photo-name").textContent = detail.name;
    for (const variant of ["before", "after"]) {
      const layer = $(`layer-${variant}`);
      const stage = layer.querySelector(".stage");
      stage.style.width = `${detail.width}px`;
      stage.style.height = `${detail.height}px`;
      stage.querySelector(".tiles").replaceChildren();
      tiles[variant].clear();
    }
    const loads = ["before", "after"].map((variant) => {
      const query = detail.variants[variant] || detail.variants.before;
      const img = $(`layer-${variant}`).querySelector("img.preview");
      img.src = query ? `/api/preview?${query}` : "";
      return query ? img.decode().catch(() => say(`cannot load the ${variant} preview`, true)) : Promise.resolve();
    });
    await Promise.all(loads);
    if (!detail.width || !detail.height) {
      say(`${detail.name}: ${detail.error || "cannot read this photo"}`, true);
      return;
    }
    if (detail.status !== "ok") say(`processing failed: ${detail.error || "unknown error"}`, true);
    if (refit) fit();
    renderRegions();
    renderStatus();
    applyView();
  }

  function variantQuery(variant) {
    return current.variants[variant] || current.variants.before;
  }

  function decisionKey() {
    return JSON.stringify([[...decision.rejected].sort(), [...decision.kept].sort(), decision.strokes]);
  }

  function renderStatus() {
    const dirty = decisionKey() !== saved;
    const review = current.review ? `${current.review} ${current.reviewed_at || ""}` : "automatic result";
    $("photo-status").textContent = `${current.status} · ${review}${dirty ? " · unsaved changes" : ""}`;
    const excluded = decision.rejected.size + decision.kept.size;
    $("region-counts").textContent = `${current.regions.length - excluded} of ${current.regions.length} accepted`;
    $("strokes-info").textContent = decision.strokes.length ? `${decision.strokes.length} brushed stroke(s)` : "";
    $("undo").disabled = busy || !current.review;
    $("approve").disabled = busy || !!current.review || current.status !== "ok" || dirty;
    $("apply").disabled = busy || current.status !== "ok" || (!dirty && current.review === "applied");
  }

  function fit() {
    const box = $("viewport").getBoundingClientRect();
    const scale = Math.min(box.width / current.width, box.height / current.height) * 0.98;
    view = { scale, tx: (box.width - current.width * scale) / 2, ty: (box.height - current.height * scale) / 2 };
  }

  function zoomTo(scale, cx, cy) {
    const box = $("viewport").getBoundingClientRect();
    if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
    const fitScale = Math.min(box.width / current.width, box.height / current.height);
    scale = Math.max(fitScale * 0.5, Math.min(8, scale));
    view.tx = cx - ((cx - view.tx) * scale) / view.scale;
    view.ty = cy - ((cy - view.ty) * scale) / view.scale;
    view.scale = scale;
    applyView();
  }

  function applyView() {
    if (!current) return;
    const transform = `translate(${view.tx}px, ${view.ty}px) scale(${view.scale})`;
    for (const variant of ["before", "after"]) $(`layer-${variant}`).querySelector(".stage").style.transform = transform;
    $("overlay-image").setAttribute("transform", `translate(${view.tx} ${view.ty}) scale(${view.scale})`);
    const width = $("viewport").clientWidth;
    const x = Math.round(split * width);
    $("layer-after").style.clipPath = `inset(0 0 0 ${x}px)`;
    $("divider").style.left = `${x - 1}px`;
    $("split").value = String(Math.round(split * 1000));
    renderLabels();
    updateTiles();
  }

  // Full-resolution tiles once the preview has fewer pixels than the screen shows.
  function updateTiles() {
    const sharpEnough = view.scale * current.width <= current.preview_width * 1.05;
    for (const variant of ["before", "after"]) {
      $(`layer-${variant}`).querySelector(".tiles").hidden = sharpEnough;
    }
    if (sharpEnough) return;
    const box = $("viewport").getBoundingClientRect();
    const size = current.tile_size;
    const x0 = Math.max(0, Math.floor(-view.tx / view.scale / size));
    const y0 = Math.max(0, Math.floor(-view.ty / view.scale / size));
    const x1 = Math.min(Math.ceil(current.width / size) - 1, Math.floor((box.width - view.tx) / view.scale / size));
    const y1 = Math.min(Math.ceil(current.height / size) - 1, Math.floor((box.height - view.ty) / view.scale / size));
    for (const variant of ["before", "after"]) {
      const holder = $(`layer-${variant}`).querySelector(".tiles");
      for (let r = y0; r <= y1; r++) {
        for (let c = x0; c <= x1; c++) {
          const key = `${c},${r}`;
          if (tiles[variant].has(key)) continue;
          const img = document.createElement("img");
          img.alt = "";
          img.style.left = `${c * size}px`;
          img.style.top = `${r * size}px`;
          img.style.width = `${Math.min(size, current.width - c * size)}px`;
          img.style.height = `${Math.min(size, current.height - r * size)}px`;
          img.src = `/api/tile?${variantQuery(variant)}&c=${c}&r=${r}`;
          holder.append(img);
          tiles[variant].set(key, img);
        }
      }
    }
  }

  function regionState(id) {
    if (decision.kept.has(id)) return "kept";
    if (decision.rejected.has(id)) return "rejected";
    return "accepted";
  }

  function colorOf(kind) {
    if (KIND_COLORS[kind]) return KIND_COLORS[kind];
    let hash = 0;
    for (const ch of kind) hash = (hash * 31 + ch.charCodeAt(0)) % 360;
    return `hsl(${hash} 90% 65%)`;
  }

  function renderRegions() {
    const group = $("overlay-image");
    const shapes = current.regions.map((region) => {
      const [x, y, w, h] = region.bbox;
      const rect = document.createElementNS(SVG, "rect");
      const pad = 2 / Math.max(view.scale, 0.05);
      rect.setAttribute("x", x - pad);
      rect.setAttribute("y", y - pad);
      rect.setAttribute("width", w + 2 * pad);
      rect.setAttribute("height", h + 2 * pad);
      rect.setAttribute("stroke", colorOf(region.kind));
      rect.setAttribute("class", `region ${regionState(region.id)}${region.hard_case ? " hard" : ""}`);
      rect.dataset.regionId = String(region.id);
      rect.addEventListener("mouseenter", () => { focusedRegion = region.id; });
      const title = document.createElementNS(SVG, "title");
      title.textContent = `#${region.id} ${region.kind} score ${Number(region.score).toFixed(2)} · ${region.engine}` +
        (region.hard_case ? ` · hard: ${region.hard_reasons.join(", ")}` : "") +
        (region.fallback_reason ? ` · fallback: ${region.fallback_reason}` : "");
      rect.append(title);
      return rect;
    });
    const strokes = decision.strokes.map((stroke) => {
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("class", "stroke");
      path.setAttribute("stroke-width", 2 * stroke.radius);
      path.setAttribute("d", strokePath(stroke.points));
      return path;
    });
    group.replaceChildren(...shapes, ...strokes);
    renderLabels();
    renderRegionList();
  }

  function strokePath(points) {
    const [first, ...rest] = points;
    return `M ${first[0]} ${first[1]} ` + (rest.length ? rest.map((p) => `L ${p[0]} ${p[1]}`).join(" ") : `L ${first[0]} ${first[1]}`);
  }

  function renderLabels() {
    const group = $("overlay-labels");
    if (!current) return;
    group.replaceChildren(...current.regions.map((region) => {
      const [x, y] = region.bbox;
      const text = document.createElementNS(SVG, "text");
      text.setAttribute("class", "label");
      text.setAttribute("x", view.tx + x * view.scale);
      text.setAttribute("y", view.ty + y * view.scale - 5);
      const state = regionState(region.id);
      const flags = (region.hard_case ? " hard" : "") + (region.fallback_reason ? " fallback" : "");
      text.textContent = `${region.kind} ${Number(region.score).toFixed(2)}${flags}${state === "accepted" ? "" : ` (${state})`}`;
      return text;
    }));
  }

  function renderRegionList() {
    $("region-list").replaceChildren(...current.regions.map((region) => {
      const li = document.createElement("li");
      const state = regionState(region.id);
      li.className = state;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colorOf(region.kind);
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = `#${region.id} ${region.kind} ${Number(region.score).toFixed(2)}` +
        (region.hard_case ? " · hard" : "") + (region.fallback_reason ? " · fallback" : "");
      const toggle = document.createElement("button");
      toggle.textContent = state === "accepted" ? "reject" : "restore";
      toggle.addEventListener("click", () => toggleRegion(region.id, false));
      const keep = document.createElement("button");
      keep.textContent = "keep";
      keep.title = "a mole or freckle the detector took: leave it as it is";
      keep.disabled = state === "kept";
      keep.addEventListener("click", () => toggleRegion(region.id, true));
      li.addEventListener("mouseenter", () => { focusedRegion = region.id; });
      li.append(swatch, what, toggle, keep);
      return li;
    }));
  }

  function toggleRegion(id, keep) {
    if (decision.kept.has(id) || (decision.rejected.has(id) && !keep)) {
      decision.kept.delete(id);
      decision.rejected.delete(id);
    } else if (keep) {
      decision.rejected.delete(id);
      decision.kept.add(id);
    } else {
      decision.rejected.add(id);
    }
    renderRegions();
    renderStatus();
  }

  async function post(path, body, doneText) {
    if (busy) return;
    busy = true;
    renderStatus();
    say(path === "/api/apply" ? "re-rendering from the original…" : "…");
    try {
      const detail = await api(path, body);
      busy = false;
      await showDetail(detail, { refit: false });
      say(doneText);
      loadList().catch(() => {});
    } catch (error) {
      say(String(error.message || error), true);
    } finally {
      busy = false;
      renderStatus();
    }
  }

  function applyDecision() {
    post("/api/apply", {
      p: current.key,
      rejected: [...decision.rejected],
      kept: [...decision.kept],
      strokes: decision.strokes,
    }, "applied: outputs re-rendered from the original");
  }

  function setTool(name) {
    tool = name;
    $("tool-select").classList.toggle("active", name === "select");
    $("tool-brush").classList.toggle("active", name === "brush");
    $("viewport").classList.toggle("brush", name === "brush");
  }

  function toImage(event) {
    const box = $("viewport").getBoundingClientRect();
    return [(event.clientX - box.left - view.tx) / view.scale, (event.clientY - box.top - view.ty) / view.scale];
  }

  // ---------- pointer ----------
  let drag = null;
  function onPointerDown(event) {
    if (!current || event.button !== 0) return;
    const viewport = $("viewport");
    viewport.setPointerCapture(event.pointerId);
    if (tool === "brush") {
      const radius = Number($("brush-size").value) / view.scale;
      const [x, y] = toImage(event);
      const stroke = { radius: Math.round(radius * 100) / 100, points: [[round1(x), round1(y)]] };
      decision.strokes.push(stroke);
      drag = { mode: "brush", stroke, lastX: event.clientX, lastY: event.clientY };
      renderRegions();
    } else {
      const target = event.target.closest ? event.target.closest("[data-region-id]") : null;
      drag = { mode: "select", x: event.clientX, y: event.clientY, tx: view.tx, ty: view.ty, moved: false,
               region: target ? Number(target.dataset.regionId) : null };
    }
  }

  function onPointerMove(event) {
    if (!drag) return;
    if (drag.mode === "brush") {
      if (Math.hypot(event.clientX - drag.lastX, event.clientY - drag.lastY) < 2) return;
      drag.lastX = event.clientX;
      drag.lastY = event.clientY;
      const [x, y] = toImage(event);
      drag.stroke.points.push([round1(x), round1(y)]);
      renderRegions();
    } else {
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      $("viewport").classList.add("panning");
      view.tx = drag.tx + dx;
      view.ty = drag.ty + dy;
      applyView();
    }
  }

  function onPointerUp(event) {
    if (!drag) return;
    const finished = drag;
    drag = null;
    $("viewport").classList.remove("panning");
    if (finished.mode === "select" && !finished.moved && finished.region !== null) {
      toggleRegion(finished.region, event.shiftKey);
    }
    renderStatus();
  }

  const round1 = (v) => Math.round(v * 10) / 10;

  // ---------- keys ----------
  function onKey(event) {
    if (event.target.tagName === "INPUT" && event.target.type !== "range" && event.target.type !== "checkbox") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!$("list-view").hidden) {
      const moves = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 };
      if (event.key in moves) {
        selected = Math.max(0, Math.min(shown.length - 1, selected + moves[event.key]));
        renderList();
      } else if (event.key === "Enter" || event.key === "o") {
        openSelected();
      } else if (event.key === "f") {
        $("filter-needs-review").checked = !$("filter-needs-review").checked;
        renderList();
      } else if (event.key === "r") {
        loadList();
      } else return;
      event.preventDefault();
      return;
    }
    if (!current) return;
    const keys = {
      Escape: () => { if (mayLeave()) location.hash = "#/"; },
      ArrowRight: () => step(1),
      ArrowLeft: () => step(-1),
      t: () => { split = split >= 1 ? 0 : 1; applyView(); },
      1: () => zoomTo(1),
      0: () => { fit(); applyView(); },
      b: () => setTool(tool === "brush" ? "select" : "brush"),
      s: () => setTool("select"),
      z: () => { decision.strokes.pop(); renderRegions(); renderStatus(); },
      o: () => $("overlay").classList.toggle("hidden-overlay"),
      m: () => { if (focusedRegion !== null) toggleRegion(focusedRegion, true); },
      a: () => { if (!$("apply").disabled) applyDecision(); },
      u: () => { if (!$("undo").disabled) $("undo").click(); },
      "[": () => { $("brush-size").value = String(Number($("brush-size").value) - 2); },
      "]": () => { $("brush-size").value = String(Number($("brush-size").value) + 2); },
    };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  }

  function mayLeave() {
    return !current || decisionKey() === saved || confirm("Discard the corrections not applied yet?");
  }

  function step(delta) {
    if (!mayLeave()) return;
    const index = shown.findIndex((p) => p.key === current.key) + delta;
    if (index >= 0 && index < shown.length) {
      selected = index;
      openSelected();
    }
  }

  // ---------- routing ----------
  async function route() {
    const match = location.hash.match(/^#\/photo\/(.+)$/);
    try {
      if (match) {
        if (!photos.length) await loadList();
        await openPhoto(decodeURIComponent(match[1]));
      } else {
        current = null;
        $("photo-view").hidden = true;
        $("list-view").hidden = false;
        await loadList();
      }
    } catch (error) {
      say(String(error.message || error), true);
    }
  }

  function init() {
    $("filter-needs-review").addEventListener("change", renderList);
    $("approve-all").addEventListener("click", () => approveAll().catch((e) => alert(e.message)));
    $("back").addEventListener("click", () => { if (mayLeave()) location.hash = "#/"; });
    window.addEventListener("beforeunload", (event) => {
      if (current && decisionKey() !== saved) event.preventDefault();
    });
    $("zoom-fit").addEventListener("click", () => { fit(); applyView(); });
    $("zoom-100").addEventListener("click", () => zoomTo(1));
    $("tool-select").addEventListener("click", () => setTool("select"));
    $("tool-brush").addEventListener("click", () => setTool("brush"));
    $("apply").addEventListener("click", applyDecision);
    $("approve").addEventListener("click", () => post("/api/approve", { p: current.key }, "approved"));
    $("undo").addEventListener("click", () => {
      if (confirm("Go back to the automatic result? The review of this photo is discarded.")) {
        post("/api/undo", { p: current.key }, "back to the automatic result");
      }
    });
    $("split").addEventListener("input", (e) => { split = Number(e.target.value) / 1000; applyView(); });
    const viewport = $("viewport");
    viewport.addEventListener("pointerdown", onPointerDown);
    viewport.addEventListener("pointermove", onPointerMove);
    viewport.addEventListener("pointerup", onPointerUp);
    viewport.addEventListener("pointercancel", () => { drag = null; });
    viewport.addEventListener("wheel", (event) => {
      if (!current) return;
      event.preventDefault();
      const box = viewport.getBoundingClientRect();
      zoomTo(view.scale * Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    window.addEventListener("resize", applyView);
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", onKey);
    route();
  }

  // For tests and scripts: where an image pixel is on screen, and the open photo's state.
  window.review = {
    imageToClient(x, y) {
      const box = $("viewport").getBoundingClientRect();
      return { x: box.left + view.tx + x * view.scale, y: box.top + view.ty + y * view.scale };
    },
    current: () => current,
    decision: () => ({ rejected: [...decision.rejected], kept: [...decision.kept], strokes: decision.strokes }),
    view: () => ({ ...view }),
  };

  init();
})();
