// Talking to the API: the key, requests, and its errors in words.

export const API = "/api/v1/asr";
const KEY_STORAGE = "asr-api-key";

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

// For what the browser loads by URL alone (EventSource, <audio>): those two routes take
// the key as ?api_key= since they cannot be given a header.
export function withKey(url) {
  const key = apiKey();
  if (!key) return url;
  return `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}`;
}

export class ApiError extends Error {
  constructor(status, body, subject) {
    super(describeError(status, body, subject));
    this.status = status;
    this.body = body;
  }
}

// A JSON request; resolves to the parsed body (null for 204), rejects with ApiError.
export async function request(method, path, subject = "The request") {
  let response;
  try {
    response = await fetch(path, { method, headers: authHeaders() });
  } catch {
    throw new ApiError(0, null, subject);
  }
  const body = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, body, subject);
  return body;
}

export async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}

export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// The error body `{"error", "detail", ...}` as a sentence a person can act on.
export function describeError(status, body, subject = "The request") {
  const detail = typeof body?.detail === "string" ? body.detail : "";
  switch (status) {
    case 0:
      return `${subject} did not reach the server, or the server closed the connection ` +
        "(it refuses uploads over its size limit that way too).";
    case 400:
      return `${subject} was refused: ${detail || "the server could not use it"}.`;
    case 401:
      return detail.includes("unknown or revoked")
        ? "This API key is unknown or revoked: enter a valid one in “API key” at the top."
        : "This server needs an API key: enter yours in “API key” at the top.";
    case 403:
      return `This API key may not do that: ${detail}.`;
    case 404:
      return "That task does not exist any more (deleted, or it belongs to another key).";
    case 409:
      return `Not possible now: ${detail}.`;
    case 410:
      return `The recording is no longer stored: ${detail}.`;
    case 413:
      if (body?.max_audio_seconds) {
        return `${subject} is too long: this server accepts recordings of at most ` +
          `${formatDuration(body.max_audio_seconds)} (${detail}).`;
      }
      return `${subject} is too large: this server accepts files of at most ` +
        `${body?.max_upload_mb ?? "?"} MB.`;
    case 415:
      return `${subject} is not audio or video this service can read` +
        `${detail ? ` (${detail.replace(/^[^:]*: /, "")})` : ""}. ` +
        `It accepts ${body?.accepted || "common audio and video formats"}.`;
    case 422:
      return `${subject} has an invalid option: ${describeFields(body?.detail)}.`;
    case 429:
      return `Too many requests for this key; try again in ${body?.retry_after ?? "a few"} s. ` +
        detail;
    case 503:
      return `The service is unavailable right now: ${detail || "try again shortly"}.`;
    default:
      return `${subject} failed (${body?.error || "error"}): ${detail || "no details"}.`;
  }
}

function describeFields(detail) {
  if (!Array.isArray(detail)) return String(detail ?? "");
  return detail.map((field) => `${field.loc?.at(-1) ?? "field"}: ${field.msg}`).join("; ");
}

export function formatDuration(seconds) {
  if (seconds == null) return "–";
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

export function formatTimestamp(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = (seconds % 60).toFixed(1).padStart(4, "0");
  return `${String(minutes).padStart(2, "0")}:${rest}`;
}
