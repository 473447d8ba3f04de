// The page's entry point: reads what the server told it (data- attributes on <body>) and
// wires the upload form, the live task list and the task view together.

import { apiKey, setApiKey } from "./api.js";
import { setUpTaskList, addQueued, reconnect } from "./tasks.js";
import { openTask, setUpTaskView, taskChanged } from "./view.js";
import { setUpUploads } from "./upload.js";

const server = document.body.dataset;

setUpKeyForm(server.auth === "true");
setUpModels(server.models.split(",").filter(Boolean), server.defaultModel);
setUpUploads({ maxUploadMb: Number(server.maxUploadMb), onQueued: addQueued });
setUpTaskView();
setUpTaskList({ open: openTask, changed: taskChanged });

function setUpKeyForm(authEnabled) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  form.hidden = !authEnabled;
  input.value = apiKey();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    reconnect();
  });
}

function setUpModels(models, defaultModel) {
  const select = document.getElementById("opt-model");
  for (const model of models) {
    const option = new Option(model, model, false, model === defaultModel);
    select.append(option);
  }
}
