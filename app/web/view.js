// One task: its transcript with timestamps (a line seeks the player), downloads, copy,
// retry, cancel and delete.

import {
  API, ApiError, authHeaders, formatDuration, formatTimestamp, readBody, request, withKey,
} from "./api.js";
import { forget, markOpen } from "./tasks.js";

let current = null; // the open task's last result

export function setUpTaskView() {
  document.getElementById("close-task").addEventListener("click", close);
  document.getElementById("copy-text").addEventListener("click", copyText);
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download));
  }
  document.getElementById("retry-task").addEventListener("click", retry);
  document.getElementById("cancel-task").addEventListener("click", cancel);
  document.getElementById("delete-task").addEventListener("click", remove);
  const player = document.getElementById("player");
  player.addEventListener("timeupdate", () => highlight(player.currentTime));
}

export async function openTask(taskId) {
  const view = document.getElementById("task-view");
  view.hidden = false;
  markOpen(taskId);
  current = { task_id: taskId };
  await load(taskId);
  const title = document.getElementById("task-title");
  title.tabIndex = -1;
  title.focus();
  view.scrollIntoView({ block: "start" });
}

// Called for every event (taskId null: a new snapshot).
export function taskChanged(taskId, event) {
  if (!current || (taskId !== null && taskId !== current.task_id)) return;
  if (event?.op === "delete") {
    const name = current.filename ?? "The task";
    close();
    status(`${name} was deleted.`);
    return;
  }
  if (event && event.status === current.status && event.status === "processing") {
    current.progress = event.progress;
    summarize(current);
    return;
  }
  load(current.task_id);
}

async function load(taskId) {
  try {
    const result = await request("GET", `${API}/result/${taskId}`, "Loading the task");
    if (current?.task_id !== taskId) return;
    const audioChanged = current.audio_url !== result.audio_url;
    current = result;
    render(result, audioChanged);
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

function render(task, audioChanged) {
  document.getElementById("task-title").textContent = task.filename;
  summarize(task);
  const player = document.getElementById("player");
  if (audioChanged) {
    player.hidden = !task.audio_url;
    if (task.audio_url) player.src = withKey(task.audio_url);
    else player.removeAttribute("src");
  }
  const done = task.status === "done";
  for (const button of document.querySelectorAll("#copy-text, [data-download]")) {
    button.disabled = !done;
  }
  const retry = document.getElementById("retry-task");
  retry.disabled = ["queued", "processing"].includes(task.status);
  retry.textContent = done ? "Transcribe again" : "Retry";
  document.getElementById("cancel-task").disabled = !["queued", "processing"]
    .includes(task.status);
  renderSegments(task.segments ?? []);
}

function summarize(task) {
  const parts = [task.status];
  if (task.status === "queued" && task.position) parts.push(`#${task.position} in queue`);
  if (task.status === "processing") parts.push(`${task.progress ?? 0}% done`);
  if (task.duration != null) parts.push(`${formatDuration(task.duration)} of audio`);
  if (task.language) parts.push(`language ${task.language}`);
  if (task.timings?.rtf != null) parts.push(`RTF ${task.timings.rtf.toFixed(2)}`);
  if (task.model) parts.push(`model ${task.model}`);
  document.getElementById("task-summary").textContent = parts.join(" · ");
  if (task.error) showError(`Failed: ${task.error}`);
}

function renderSegments(segments) {
  const list = document.getElementById("segments");
  list.replaceChildren(...segments.map((segment) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "segment";
    button.dataset.start = segment.start;
    button.dataset.end = segment.end;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = formatTimestamp(segment.start);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = segment.text.trim();
    button.append(time, text);
    button.setAttribute("aria-label", `Play from ${formatTimestamp(segment.start)}: ` +
      segment.text.trim());
    button.addEventListener("click", () => seek(segment.start));
    item.append(button);
    return item;
  }));
}

function seek(seconds) {
  const player = document.getElementById("player");
  player.currentTime = seconds;
  player.play().catch(() => {}); // autoplay rules may refuse; the position is set anyway
  highlight(seconds);
}

function highlight(seconds) {
  for (const button of document.querySelectorAll("#segments .segment")) {
    const inside = seconds >= Number(button.dataset.start) && seconds < Number(button.dataset.end);
    button.classList.toggle("current", inside);
  }
}

async function copyText() {
  const text = current?.text ?? "";
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea"); // without clipboard permission
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  status("Text copied.");
}

async function download(format) {
  const subject = `The ${format.toUpperCase()} download`;
  try {
    const response = await fetch(`${API}/export/${current.task_id}/${format}`,
                                 { headers: authHeaders() });
    if (!response.ok) throw new ApiError(response.status, await readBody(response), subject);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = fileName(response.headers.get("Content-Disposition"), format);
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    status(`Downloaded ${link.download}.`);
  } catch (error) {
    showError(error instanceof ApiError ? error.message : `${subject} failed: ${error}`);
  }
}

function fileName(disposition, format) {
  const exact = /filename\*=UTF-8''([^;]+)/i.exec(disposition ?? "");
  if (exact) return decodeURIComponent(exact[1]);
  const stem = (current.filename ?? "transcript").replace(/\.[^.]*$/, "");
  return `${stem}.${format}`;
}

async function retry() {
  const force = current.status === "done" ? "?force=true" : "";
  await act("POST", `${API}/retry/${current.task_id}${force}`, "Queued again.", "The retry");
}

async function cancel() {
  await act("POST", `${API}/cancel/${current.task_id}`, "Canceled.", "Canceling");
}

async function remove() {
  const name = current.filename ?? "this task";
  if (!confirm(`Delete ${name}? Its transcript and recording are removed for good.`)) return;
  const taskId = current.task_id;
  if (await act("DELETE", `${API}/task/${taskId}`, `Deleted ${name}.`, "Deleting")) {
    forget(taskId);
    close();
  }
}

async function act(method, path, done, subject) {
  try {
    await request(method, path, subject);
    status(done);
    showError("");
    return true;
  } catch (error) {
    showError(error.message);
    return false;
  }
}

function close() {
  document.getElementById("task-view").hidden = true;
  document.getElementById("player").removeAttribute("src");
  document.getElementById("player").load();
  current = null;
  markOpen(null);
}

function status(text) {
  document.getElementById("action-status").textContent = text;
  document.getElementById("announcer").textContent = text;
}

function showError(text) {
  const error = document.getElementById("task-error");
  error.hidden = !text;
  error.textContent = text;
}
