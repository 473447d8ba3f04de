// Uploading: drag-and-drop or the file picker, one XMLHttpRequest per file for its progress.

import { API, authHeaders, describeError, parseJson } from "./api.js";

const MB = 1024 * 1024;

export function setUpUploads({ maxUploadMb, onQueued }) {
  const input = document.getElementById("file-input");
  const zone = document.getElementById("drop-zone");
  document.getElementById("upload-limit").textContent = `Up to ${maxUploadMb} MB per file.`;

  input.addEventListener("change", () => {
    uploadAll(input.files, maxUploadMb, onQueued);
    input.value = ""; // choosing the same file again uploads it again
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    uploadAll(event.dataTransfer.files, maxUploadMb, onQueued);
  });
}

function uploadAll(files, maxUploadMb, onQueued) {
  const options = currentOptions();
  for (const file of files) upload(file, options, maxUploadMb, onQueued);
}

function currentOptions() {
  const language = document.getElementById("opt-language").value.trim();
  return {
    language: language === "auto" ? "" : language,
    model: document.getElementById("opt-model").value,
    task: document.getElementById("opt-task").value,
    word_timestamps: document.getElementById("opt-words").checked ? "true" : "false",
  };
}

function upload(file, options, maxUploadMb, onQueued) {
  const item = uploadItem(file);
  if (file.size > maxUploadMb * MB) {
    // Refused before sending: the server would stop reading and answer the same.
    item.fail(describeError(413, { max_upload_mb: maxUploadMb }, file.name));
    return;
  }
  const form = new FormData();
  form.append("audio", file, file.name);
  for (const [name, value] of Object.entries(options)) if (value) form.append(name, value);

  const xhr = new XMLHttpRequest();
  xhr.open("POST", `${API}/submit`);
  for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) item.progress(event.loaded / event.total);
  });
  xhr.addEventListener("load", () => {
    const body = parseJson(xhr.responseText) ?? { detail: xhr.responseText };
    if (xhr.status === 200 || xhr.status === 202) {
      item.done(body.warning || (xhr.status === 200 ? "already uploaded" : "queued"));
      onQueued(body, file.name);
    } else {
      item.fail(describeError(xhr.status, body, file.name));
    }
  });
  xhr.addEventListener("error", () => item.fail(describeError(0, null, file.name)));
  xhr.send(form);
}

// One line under the drop zone: the file, a progress bar, then the outcome in words.
function uploadItem(file) {
  const item = document.createElement("li");
  item.className = "upload";
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const message = document.createElement("span");
  message.className = "upload-message";
  message.textContent = "uploading…";
  item.append(name, bar, message);
  document.getElementById("uploads").prepend(item);
  return {
    progress(fraction) {
      bar.value = Math.round(fraction * 100);
      message.textContent = `uploading… ${bar.value}%`;
    },
    done(text) {
      bar.value = 100;
      message.textContent = text;
    },
    fail(text) {
      bar.remove();
      item.classList.add("failed");
      message.className = "upload-message error";
      message.setAttribute("role", "alert");
      message.textContent = text;
    },
  };
}
