// Talking to the manager: same origin, JSON, the session cookie (HttpOnly, never read
// here) and the CSRF token on every call that changes something.
//
// Errors come back as ApiError with the server's {"error": {"code", "message"}}. A 401
// from any route but the session's own ends the session in the page (the app shows the
// sign-in form); a 403 with code "csrf" fetches a fresh token from GET /v1/session and
// tries once more.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  // The route (or the plugin behind it) is not there.
  get missing() {
    return this.status === 404 || this.status === 501;
  }
}

let csrfToken = '';
let onSessionEnded = () => {};

export function setCsrfToken(token) {
  csrfToken = token || '';
}

// Called (once per burst) when a request answers 401.
export function onUnauthorized(callback) {
  onSessionEnded = callback;
}

export function isAbort(error) {
  return error && (error.name === 'AbortError' || error.code === 'aborted');
}

async function parseBody(response) {
  const body = await response.text();
  if (!body.trim()) return null;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function errorFrom(response, body) {
  const retry = response.headers.get('Retry-After');
  const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
  let message = error && typeof error.message === 'string' && error.message ? error.message : '';
  const code = error && typeof error.code === 'string' ? error.code : `http_${response.status}`;
  if (!message) {
    if (response.status >= 500) message = `The manager answered ${response.status} ${response.statusText}; its log says why. Try again in a moment.`;
    else message = `The manager answered ${response.status} ${response.statusText}.`;
  }
  return new ApiError(response.status, code, message, retry);
}

async function send(method, path, body, signal) {
  const headers = {Accept: 'application/json'};
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store', signal};
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, 'network', 'The manager did not answer. Check that shoald is running and reachable, then try again.');
  }
}

// Re-reads the session: its user and a fresh CSRF token. Throws ApiError (401 when signed out).
export async function loadSession(signal) {
  const response = await send('GET', '/v1/session', undefined, signal);
  const body = await parseBody(response);
  if (!response.ok) throw errorFrom(response, body);
  if (!body || typeof body !== 'object') throw new ApiError(response.status, 'bad_json', 'The manager sent a session that is not JSON.');
  // Nobody signed in: the manager says so with {"user": null} (a 200, so the browser logs no error).
  if (!body.user) throw new ApiError(401, 'unauthenticated', 'Not signed in.');
  setCsrfToken(body.csrf_token);
  return body;
}

// One API call. `path` must be built with apiPath(). Returns the parsed JSON body (or null).
export async function request(method, path, body, {signal, session = false} = {}) {
  let response = await send(method, path, body, signal);
  let parsed = await parseBody(response);
  if (response.status === 403 && parsed && parsed.error && parsed.error.code === 'csrf' && method !== 'GET') {
    try {
      await loadSession(signal);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && !session) onSessionEnded(e);
      throw e;
    }
    response = await send(method, path, body, signal);
    parsed = await parseBody(response);
  }
  if (!response.ok) {
    const error = errorFrom(response, parsed);
    if (response.status === 401 && !session) onSessionEnded(error);
    throw error;
  }
  if (parsed === undefined) throw new ApiError(response.status, 'bad_json', `The manager's answer to ${method} ${path} is not JSON.`);
  return parsed;
}

// A client whose calls are cancelled together (when the page they belong to is left).
export function client(signal) {
  return {
    get: (path) => request('GET', path, undefined, {signal}),
    post: (path, body = {}) => request('POST', path, body, {signal}),
    put: (path, body = {}) => request('PUT', path, body, {signal}),
    del: (path) => request('DELETE', path, undefined, {signal}),
  };
}
