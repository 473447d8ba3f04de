// The live task list: a snapshot and then every change from GET /api/v1/asr/events
// (Server-Sent Events); polling the history when the stream cannot be had.

import { API, formatDuration, request, withKey } from "./api.js";

const POLL_MS = 5000;
const RECONNECT_MS = 30000;
const ACTIVE = new Set(["queued", "processing"]);

const tasks = new Map(); // task_id -> the latest event fields for it
const rows = new Map(); // task_id -> its <li>
let handlers = { open: () => {}, changed: () => {} };
let source = null;
let pollTimer = null;
let positionTimer = null;

export function setUpTaskList(callbacks) {
  handlers = callbacks;
  connect();
}

export function reconnect() {
  source?.close();
  stopPolling();
  connect();
}

export function knownTask(taskId) {
  return tasks.get(taskId);
}

// A submit's answer: shown at once, before its event arrives.
export function addQueued(answer, filename) {
  if (tasks.has(answer.task_id)) return;
  apply({ task_id: answer.task_id, op: "insert", status: answer.status, position: answer.position,
          progress: 0, filename: answer.filename ?? filename,
          created_at: new Date().toISOString() });
}

export function forget(taskId) {
  apply({ task_id: taskId, op: "delete" });
}

function connect() {
  if (!("EventSource" in window)) {
    startPolling();
    return;
  }
  source = new EventSource(withKey(`${API}/events`));
  source.addEventListener("snapshot", (event) => {
    stopPolling();
    showError("");
    showConnection("live", "Live updates");
    replaceAll(JSON.parse(event.data).tasks);
  });
  source.addEventListener("task", (event) => apply(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (no key, a revoked key, a proxy without streaming): poll, try again later.
      startPolling();
      setTimeout(() => pollTimer && reconnect(), RECONNECT_MS);
    } else {
      showConnection("waiting", "Reconnecting…");
    }
  });
}

function startPolling() {
  if (pollTimer) return;
  showConnection("polling", `Refreshing every ${POLL_MS / 1000} s`);
  poll();
  pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function poll() {
  try {
    const page = await request("GET", `${API}/history?limit=50`, "Loading the tasks");
    replaceAll(page.records.map((record) => ({ ...tasks.get(record.task_id), ...record })));
    const stale = page.records.filter((r) => ACTIVE.has(r.status) || (r.status === "done"
      && tasks.get(r.task_id)?.rtf == null));
    for (const record of stale) refreshFromResult(record.task_id);
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

async function refreshFromResult(taskId) {
  try {
    const result = await request("GET", `${API}/result/${taskId}`, "Loading a task");
    const known = tasks.get(taskId);
    if (!known) return;
    tasks.set(taskId, { ...known, status: result.status, position: result.position,
                        progress: result.progress ?? known.progress,
                        rtf: result.timings?.rtf, error: result.error });
    render();
  } catch {
    // The next event or poll tells again.
  }
}

function replaceAll(list) {
  tasks.clear();
  for (const task of list) tasks.set(task.task_id, task);
  render();
  handlers.changed(null);
}

function apply(event) {
  const before = tasks.get(event.task_id);
  if (event.op === "delete") {
    tasks.delete(event.task_id);
  } else {
    tasks.set(event.task_id, { ...before, ...event });
    if (before && before.status !== event.status) {
      announce(`${event.filename ?? before.filename}: ${event.status}`);
    }
  }
  render();
  handlers.changed(event.task_id, event);
  // When a task leaves the queue, the ones behind it move up.
  if (before?.status === "queued" && (event.op === "delete" || event.status !== "queued")) {
    clearTimeout(positionTimer);
    positionTimer = setTimeout(refreshPositions, 300);
  }
}

function refreshPositions() {
  for (const [taskId, task] of tasks) if (task.status === "queued") refreshFromResult(taskId);
}

function render() {
  const list = document.getElementById("tasks");
  const ordered = [...tasks.values()].sort((a, b) =>
    String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")));
  for (const [taskId, row] of rows) {
    if (!tasks.has(taskId)) {
      row.remove();
      rows.delete(taskId);
    }
  }
  ordered.forEach((task, index) => {
    const row = rows.get(task.task_id) ?? newRow(task.task_id);
    fillRow(row, task);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] ?? null);
  });
  document.getElementById("tasks-empty").hidden = tasks.size > 0;
}

function newRow(taskId) {
  const row = document.createElement("li");
  row.className = "task";
  row.dataset.taskId = taskId;
  row.innerHTML = `<button type="button" class="task-open"></button>
    <span class="badge"></span>
    <span class="task-state"><progress max="100" hidden></progress>
      <span class="task-detail"></span></span>`;
  row.querySelector(".task-open").addEventListener("click", () => handlers.open(taskId));
  rows.set(taskId, row);
  return row;
}

function fillRow(row, task) {
  const open = row.querySelector(".task-open");
  open.textContent = task.filename ?? task.task_id;
  open.setAttribute("aria-label", `Open ${task.filename ?? "task"} (${task.status})`);
  const badge = row.querySelector(".badge");
  badge.textContent = task.status;
  badge.className = `badge status-${task.status}`;
  const bar = row.querySelector("progress");
  bar.hidden = task.status !== "processing";
  bar.value = task.progress ?? 0;
  bar.setAttribute("aria-label", `Progress of ${task.filename}`);
  row.querySelector(".task-detail").textContent = describeRow(task);
}

function describeRow(task) {
  const audio = task.duration != null ? `${formatDuration(task.duration)} audio` : "";
  switch (task.status) {
    case "queued":
      return [task.position ? `#${task.position} in queue` : "waiting", audio]
        .filter(Boolean).join(" · ");
    case "processing":
      return [`${task.progress ?? 0}%`, audio].filter(Boolean).join(" · ");
    case "done":
      return [audio, task.rtf != null ? `RTF ${task.rtf.toFixed(2)}` : ""]
        .filter(Boolean).join(" · ");
    case "failed":
      return task.error ?? "failed";
    default:
      return audio;
  }
}

export function markOpen(taskId) {
  for (const [id, row] of rows) {
    if (id === taskId) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

function showConnection(state, text) {
  const badge = document.getElementById("connection");
  badge.dataset.state = state;
  badge.textContent = text;
}

function showError(text) {
  const error = document.getElementById("tasks-error");
  error.hidden = !text;
  error.textContent = text;
}

function announce(text) {
  document.getElementById("announcer").textContent = text;
}
