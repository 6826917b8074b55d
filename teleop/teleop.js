// The a2w teleop page (issue 19). Sends both controllers' poses and buttons to teleop_node over a
// WebSocket at the XR frame rate (60 Hz from the desktop gizmos), and shows what the node says.
// Protocol v1: see ros_ws/src/a2w/a2w/teleop/session.py. Poses are in the XR reference space
// (local-floor: y up, -z ahead), [x, y, z, qx, qy, qz, qw]; the node maps them into the rig.
"use strict";
(function () {
  const PROTOCOL = 1;
  const ARMS = ["left", "right"];
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let ws = null, seq = 0, sent = 0, lastState = null, xrSession = null, poseSource = null;
  const errors = [];

  // -- the link -----------------------------------------------------------------------------------
  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" +
      encodeURIComponent(token);
    ws = new WebSocket(url);
    ws.onopen = () => { setBadge("link", "connected", "on"); };
    ws.onclose = (ev) => {
      setBadge("link", "disconnected" + (ev.reason ? ": " + ev.reason : "") +
        (token ? "" : " (no pairing token in the address)"), "warn");
      setTimeout(connect, 1000);
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "state") showState(m);
      else if (m.type === "error") showError(m.why, m.dropped);
      else if (m.type === "haptic") pulse(m.intensity || 0.5, m.ms || 100);
    };
  }
  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(obj)); sent++; return true; }
    return false;
  }
  function sendPoses(arms) { return send({ v: PROTOCOL, type: "pose", seq: seq++, arms: arms }); }
  function episode(action) { send({ v: PROTOCOL, type: "episode", action: action, task: $("instruction").value }); }

  // -- what the node says -------------------------------------------------------------------------
  function setBadge(id, text, cls) { const e = $(id); e.textContent = text; e.className = "badge " + (cls || ""); }
  function showError(why, dropped) {
    if (why) { $("error").textContent = why; errors.push(why); }
    if (dropped) {
      $("dropped").textContent = "dropped: " + Object.entries(dropped).filter(([, n]) => n > 0)
        .map(([k, n]) => k + " " + n).join(", ");
    }
  }
  function showState(s) {
    lastState = s;
    setBadge("owned", s.owned ? "arms: ours (" + s.mode + ")" : "arms: not ours", s.owned ? "on" : "warn");
    for (const a of ARMS) setBadge("eng-" + a, a + ": " + (s.engaged[a] ? "engaged" : "released"), s.engaged[a] ? "on" : "");
    setBadge("rec", s.recording ? "recording episode " + s.episode : "not recording", s.recording ? "rec" : "");
    setBadge("count", "saved: " + s.episodes_saved);
    const sel = $("instruction");
    if (sel.options.length !== s.instructions.length) {
      sel.innerHTML = "";
      for (const i of s.instructions) { const o = document.createElement("option"); o.value = o.textContent = i; sel.appendChild(o); }
      if (s.task) sel.value = s.task;
    }
    $("start").disabled = s.recording; $("save").disabled = !s.recording;
    $("discard").disabled = !s.recording; $("rerecord").disabled = !s.recording;
    showError(s.last_error, s.dropped);
  }
  for (const a of ["start", "save", "discard", "rerecord"]) $(a).onclick = () => episode(a);

  // -- desktop gizmos -----------------------------------------------------------------------------
  const gizmo = {
    left: { p: [-0.2, 1.0, -0.4], yaw: 0, grip: false, trigger: 0 },
    right: { p: [0.2, 1.0, -0.4], yaw: 0, grip: false, trigger: 0 },
  };
  let selected = "left";
  const keys = new Set();
  function quatYaw(yaw) { return [0, Math.sin(yaw / 2), 0, Math.cos(yaw / 2)]; }  // about XR y (up)
  function gizmoArms() {
    const out = {};
    for (const a of ARMS) {
      const g = gizmo[a];
      out[a] = { tracked: true, pose: g.p.concat(quatYaw(g.yaw)), grip: g.grip, trigger: g.trigger };
    }
    return out;
  }
  function select(a) { selected = a; $("selected").textContent = "selected: " + a; $("engage-box").checked = gizmo[a].grip; }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT") return;
    if (e.key === "1") select("left");
    else if (e.key === "2") select("right");
    else if (e.key === " ") { gizmo[selected].grip = true; $("engage-box").checked = true; e.preventDefault(); }
    else if (e.key === "g") gizmo[selected].trigger = gizmo[selected].trigger > 0.5 ? 0 : 1;
    keys.add(e.key);
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " ") { gizmo[selected].grip = false; $("engage-box").checked = false; }
    keys.delete(e.key);
  });
  $("engage-box").onchange = (e) => { gizmo[selected].grip = e.target.checked; };
  const canvas = $("view"), ctx = canvas.getContext("2d");
  const PX = 400;  // pixels per metre in the top view
  const toCanvas = (p) => [canvas.width / 2 + p[0] * PX, canvas.height * 0.85 + p[2] * PX];
  let drag = null;
  canvas.onmousedown = (e) => { drag = [e.offsetX, e.offsetY]; };
  window.onmouseup = () => { drag = null; };
  canvas.onmousemove = (e) => {
    if (!drag) return;
    const k = canvas.width / canvas.clientWidth / PX;
    gizmo[selected].p[0] += (e.offsetX - drag[0]) * k;
    gizmo[selected].p[2] += (e.offsetY - drag[1]) * k;
    drag = [e.offsetX, e.offsetY];
  };
  function stepGizmo(dt) {
    const g = gizmo[selected], v = 0.25 * dt, w = 1.0 * dt;
    if (keys.has("w")) g.p[2] -= v; if (keys.has("s")) g.p[2] += v;
    if (keys.has("a")) g.p[0] -= v; if (keys.has("d")) g.p[0] += v;
    if (keys.has("r")) g.p[1] += v; if (keys.has("f")) g.p[1] -= v;
    if (keys.has("q")) g.yaw += w; if (keys.has("e")) g.yaw -= w;
  }
  function draw(arms) {
    ctx.fillStyle = "#0e1014"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#262b33"; ctx.lineWidth = 1;
    for (let x = -1; x <= 1; x += 0.1) { const [cx] = toCanvas([x, 0, 0]); ctx.beginPath(); ctx.moveTo(cx, 0); ctx.lineTo(cx, canvas.height); ctx.stroke(); }
    for (let z = -1; z <= 0.2; z += 0.1) { const [, cz] = toCanvas([0, 0, z]); ctx.beginPath(); ctx.moveTo(0, cz); ctx.lineTo(canvas.width, cz); ctx.stroke(); }
    ctx.fillStyle = "#8894a6"; ctx.font = "13px system-ui";
    ctx.fillText("top view: ahead is up, 10 cm grid", 10, 18);
    for (const a of ARMS) {
      const m = arms[a];
      if (!m || !m.pose) continue;
      const [x, y] = toCanvas(m.pose), q = m.pose.slice(3);
      const yaw = 2 * Math.atan2(q[1], q[3]);
      const eng = lastState && lastState.engaged[a];
      ctx.fillStyle = eng ? "#2ecc71" : (m.grip ? "#f1c40f" : (a === "left" ? "#5dade2" : "#e59866"));
      ctx.beginPath(); ctx.arc(x, y, 10 + 20 * (m.pose[1] - 0.6), 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 3; ctx.beginPath(); ctx.moveTo(x, y);
      ctx.lineTo(x - 30 * Math.sin(yaw), y - 30 * Math.cos(yaw)); ctx.stroke();
      ctx.fillStyle = "#e6e6e6";
      ctx.fillText(a + (a === selected && !poseSource ? " (selected)" : "") + (m.trigger > 0.5 ? " closed" : ""), x + 16, y + 4);
    }
  }
  let last = performance.now(), t0 = performance.now();
  function desktopTick() {
    if (xrSession) return;
    const now = performance.now();
    stepGizmo((now - last) / 1000); last = now;
    const arms = poseSource ? poseSource((now - t0) / 1000) : gizmoArms();
    sendPoses(arms);
    draw(arms);
  }
  // a timer rather than requestAnimationFrame: it keeps running in a background tab or headless
  setInterval(desktopTick, 1000 / 60);

  // -- WebXR --------------------------------------------------------------------------------------
  const prevButtons = { left: [], right: [] };
  function pulse(intensity, ms) {
    if (!xrSession) return;
    for (const src of xrSession.inputSources) {
      const gp = src.gamepad;
      if (!gp) continue;
      const h = gp.hapticActuators && gp.hapticActuators[0];
      if (h && h.pulse) h.pulse(intensity, ms);
      else if (gp.vibrationActuator && gp.vibrationActuator.playEffect) {
        gp.vibrationActuator.playEffect("dual-rumble", { duration: ms, strongMagnitude: intensity });
      }
    }
  }
  let xrGL = null, xrMode = "";
  function onXRFrame(time, frame) {
    const session = frame.session;
    session.requestAnimationFrame(onXRFrame);
    // a plain backdrop in VR (dark, brighter while an arm is engaged), transparent in AR so the
    // passthrough shows the rig
    const layer = session.renderState.baseLayer;
    xrGL.bindFramebuffer(xrGL.FRAMEBUFFER, layer.framebuffer);
    const eng = lastState && (lastState.engaged.left || lastState.engaged.right);
    if (xrMode === "immersive-ar") xrGL.clearColor(0, 0, 0, 0);
    else xrGL.clearColor(eng ? 0.05 : 0.02, eng ? 0.12 : 0.03, eng ? 0.07 : 0.05, 1);
    xrGL.clear(xrGL.COLOR_BUFFER_BIT | xrGL.DEPTH_BUFFER_BIT);
    const arms = { left: { tracked: false, pose: null, grip: false, trigger: 0 },
                   right: { tracked: false, pose: null, grip: false, trigger: 0 } };
    for (const src of session.inputSources) {
      const a = src.handedness;
      if (!(a in arms) || !src.gripSpace) continue;
      const pose = frame.getPose(src.gripSpace, refSpace);
      const gp = src.gamepad;
      const b = gp ? gp.buttons : [];
      if (pose) {
        const p = pose.transform.position, o = pose.transform.orientation;
        arms[a] = { tracked: !pose.emulatedPosition, pose: [p.x, p.y, p.z, o.x, o.y, o.z, o.w],
                    grip: !!(b[1] && b[1].pressed), trigger: b[0] ? Math.min(1, Math.max(0, b[0].value)) : 0 };
      }
      // A (right 4): start or save; B (right 5): discard; X (left 4): re-record
      const pressed = (i) => b[i] && b[i].pressed && !prevButtons[a][i];
      if (a === "right" && pressed(4)) episode(lastState && lastState.recording ? "save" : "start");
      if (a === "right" && pressed(5)) episode("discard");
      if (a === "left" && pressed(4)) episode("rerecord");
      prevButtons[a] = b.map((x) => x.pressed);
    }
    sendPoses(poseSource ? poseSource(time / 1000) : arms);
  }
  let refSpace = null;
  async function enterXR(mode) {
    // dom-overlay (where the browser has it, in AR): the page's badges and buttons over the passthrough
    const session = await navigator.xr.requestSession(mode, { requiredFeatures: ["local-floor"],
      optionalFeatures: ["dom-overlay"], domOverlay: { root: document.body } });
    xrSession = session;
    xrMode = mode;
    setBadge("mode", mode, "on");
    const gl = document.createElement("canvas").getContext("webgl", { xrCompatible: true });
    xrGL = gl;
    session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
    refSpace = await session.requestReferenceSpace("local-floor");
    session.addEventListener("end", () => { xrSession = null; setBadge("mode", "desktop"); });
    session.requestAnimationFrame(onXRFrame);
  }
  async function probeXR() {
    if (!navigator.xr) { setBadge("mode", "desktop (no WebXR)"); return; }
    for (const [mode, id] of [["immersive-vr", "enter-vr"], ["immersive-ar", "enter-ar"]]) {
      let ok = false;
      try { ok = await navigator.xr.isSessionSupported(mode); } catch (e) { ok = false; }
      if (ok) { $(id).classList.remove("hidden"); $("xr-none").classList.add("hidden"); $(id).onclick = () => enterXR(mode).catch((e) => showError("cannot start " + mode + ": " + e)); }
    }
  }

  // -- the test hook: a scripted pose source replaces the gizmos (and the controllers) ------------
  window.a2wTeleop = {
    setPoseSource: (fn) => { poseSource = fn; t0 = performance.now(); },
    state: () => lastState,
    sent: () => sent,
    errors: () => errors.slice(),
    send: (raw) => { if (ws && ws.readyState === WebSocket.OPEN) { ws.send(raw); return true; } return false; },
    connected: () => !!ws && ws.readyState === WebSocket.OPEN,
    xr: () => !!xrSession,
  };
  probeXR();
  connect();
})();
