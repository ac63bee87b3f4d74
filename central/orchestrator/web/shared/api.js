// The public API as the pages use it: the response envelope, bearer tokens refreshed in the
// background before they expire, and central's clock (X-Server-Time) for every countdown.

export class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// ----- central's clock -----
// The phone's clock may be minutes off; a QR countdown or a hold countdown must follow central's.
const OFFSET_KEY = "tr.clockOffsetMs";
let clockOffsetMs = rememberedOffset();

function rememberedOffset() {
  try {
    const value = Number(localStorage.getItem(OFFSET_KEY));
    return Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

// An answer that took longer than this (or spanned a sleeping laptop) says too little about
// when central stamped it: keep the offset from a quicker one.
const MAX_SAMPLE_ROUND_TRIP_MS = 1_500;

function observeServerTime(response, sentAt, receivedAt) {
  const stamp = Number(response.headers.get("X-Server-Time"));
  if (!Number.isFinite(stamp) || stamp <= 0) return;
  if (receivedAt < sentAt || receivedAt - sentAt > MAX_SAMPLE_ROUND_TRIP_MS) return;
  // central stamped its answer somewhere between sending and receiving: take the midpoint
  clockOffsetMs = stamp * 1000 - (sentAt + receivedAt) / 2;
  try {
    // kept for a reload without network: the phone's TR2 codes carry central's time
    localStorage.setItem(OFFSET_KEY, String(Math.round(clockOffsetMs)));
  } catch {
    // storage disabled: the in-memory offset still serves this page
  }
}

// ----- the session -----
// Tokens live in localStorage: the pages' CSP allows no inline or foreign script, and every
// user-supplied string is rendered as text, so no injected script runs beside them.
const REFRESH_MARGIN_MS = 60_000;

export class Session {
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.state = null;
    this.timer = null;
    this.listeners = [];
    try {
      this.state = JSON.parse(localStorage.getItem(storageKey) || "null");
    } catch {
      this.state = null;
    }
  }

  get signedIn() {
    return Boolean(this.state && this.state.access);
  }

  get user() {
    return this.state ? this.state.user : null;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  save(access, refresh, user) {
    this.state = {
      access,
      refresh: refresh || (this.state && this.state.refresh),
      user: user || (this.state && this.state.user),
      expiresAt: tokenExpiry(access),
    };
    localStorage.setItem(this.storageKey, JSON.stringify(this.state));
    this.scheduleRefresh();
    this.listeners.forEach((l) => l(this));
  }

  setUser(user) {
    if (!this.state) return;
    this.state.user = user;
    localStorage.setItem(this.storageKey, JSON.stringify(this.state));
    this.listeners.forEach((l) => l(this));
  }

  // Log out: central ends the session (the refresh token goes along so it ends that too, not just
  // the access token); on this device it ends whatever central answers.
  async end(api) {
    try {
      await api.post("/api/auth/logout", { refresh_token: this.state && this.state.refresh });
    } catch {
      // offline, or the session had already ended at central
    }
    this.clear();
  }

  clear() {
    this.state = null;
    clearTimeout(this.timer);
    localStorage.removeItem(this.storageKey);
    this.listeners.forEach((l) => l(this));
  }

  scheduleRefresh() {
    clearTimeout(this.timer);
    if (!this.state || !this.state.expiresAt) return;
    const wait = Math.max(5_000, this.state.expiresAt - serverNow() - REFRESH_MARGIN_MS);
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {});
    }, wait);
  }

  async refresh() {
    if (!this.state || !this.state.refresh) throw new ApiFailure(401, "UNAUTHORIZED", "signed out");
    try {
      const data = await rawCall("POST", "/api/auth/refresh", undefined, this.state.refresh);
      this.save(data.access_token, data.refresh_token, null);
      return data;
    } catch (err) {
      if (err.status === 401) this.clear();
      throw err;
    }
  }
}

function tokenExpiry(token) {
  // the access token is a JWT: its exp claim says when to refresh (no secret is needed to read it)
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

// ----- calls -----

async function rawCall(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch {
    throw new ApiFailure(0, "NETWORK", "central cannot be reached: check the connection");
  }
  observeServerTime(response, sentAt, Date.now());
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok || !payload || payload.success === false) {
    const p = payload || {};
    throw new ApiFailure(
      response.status,
      p.error_code || `HTTP_${response.status}`,
      p.message || response.statusText,
      p.details,
    );
  }
  return payload.data;
}

export function makeApi(session) {
  async function call(method, path, body) {
    const token = session.signedIn ? session.state.access : null;
    try {
      return await rawCall(method, path, body, token);
    } catch (err) {
      // an access token that ran out while the phone slept: refresh once and try again
      if (token && err.status === 401 && err.code === "TOKEN_EXPIRED" && session.state) {
        await session.refresh();
        return rawCall(method, path, body, session.state.access);
      }
      if (token && err.status === 401) session.clear();
      throw err;
    }
  }
  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body === undefined ? {} : body),
    patch: (path, body) => call("PATCH", path, body),
    del: (path) => call("DELETE", path),
    anonymous: (method, path, body) => rawCall(method, path, body, null),
  };
}
