// TR2: codes the phone makes by itself, offline, bound to this phone.
//
// Once, online, the page makes a P-256 key pair whose private half can never leave the browser
// (WebCrypto, extractable: false, kept in IndexedDB) and asks central to certify the public half
// for this ticket (POST /api/tickets/{seat}/device). From then on a fresh code is signed here every
// few seconds with no network at all:
//     "TR2:" + base45( cert (129) | t (4, central's unix seconds) | ECDSA P-256 r||s (64) )
// where the signature covers b"TR2" + cert + t. A gate checks central's signature on the cert and
// this phone's signature on the code, with public keys only. Copying a screenshot to another phone
// gives a code that is dead 60 seconds later; binding from another phone replaces this one.

const DB_NAME = "ticketremaster-devices";
const STORE = "tickets";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const CERT_LENGTH = 129;

// crypto.subtle exists only in a secure context (https, or localhost): elsewhere the page falls
// back to central's rotating TR1 codes, which need the network.
export function deviceCodesSupported() {
  return Boolean(globalThis.crypto && crypto.subtle && globalThis.indexedDB);
}

// ----- the key and certificate of one ticket, in IndexedDB -----

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export function loadDevice(seatId) {
  return withStore("readonly", (store) => store.get(seatId)).then((found) => found || null);
}

function saveDevice(seatId, device) {
  return withStore("readwrite", (store) => store.put(device, seatId));
}

export function forgetDevice(seatId) {
  return withStore("readwrite", (store) => store.delete(seatId));
}

// The owner epoch the certificate was issued for (bytes 22-25): a transfer or refund ends it.
export function certOwnerEpoch(cert) {
  return new DataView(cert.buffer, cert.byteOffset, cert.byteLength).getUint32(22);
}

// ----- binding (online, once per ticket and phone) -----

function compressedPoint(raw) {
  // WebCrypto exports 0x04 | X | Y; the certificate carries 0x02/0x03 (Y's parity) | X
  const point = new Uint8Array(33);
  point[0] = 0x02 | (raw[64] & 1);
  point.set(raw.subarray(1, 33), 1);
  return point;
}

function base64url(bytes) {
  let text = "";
  bytes.forEach((b) => {
    text += String.fromCharCode(b);
  });
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(plain, (c) => c.charCodeAt(0));
}

// A new key for this phone, certified by central. Binding again (another phone, or this one after
// its storage was cleared) replaces the device on record: the older key's codes are refused.
export async function bindDevice(api, seatId) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const answer = await api.post(`/api/tickets/${seatId}/device`, {
    public_key: base64url(compressedPoint(raw)),
  });
  const cert = fromBase64url(answer.cert);
  if (cert.length !== CERT_LENGTH) throw new Error("central sent a certificate of the wrong size");
  const device = {
    privateKey: pair.privateKey,
    cert,
    deviceSerial: answer.device_serial,
    notAfter: answer.not_after,
  };
  await saveDevice(seatId, device);
  return device;
}

// ----- the code -----

export function base45(bytes) {
  let out = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1];
    for (let k = 0; k < 3; k += 1) {
      out += ALPHABET[n % 45];
      n = Math.floor(n / 45);
    }
  }
  if (bytes.length % 2 === 1) {
    const n = bytes[bytes.length - 1];
    out += ALPHABET[n % 45] + ALPHABET[Math.floor(n / 45)];
  }
  return out;
}

// The code for central's unix second `t`, signed here; no network.
export async function deviceCode(device, t) {
  const signed = new Uint8Array(3 + CERT_LENGTH + 4);
  signed.set([0x54, 0x52, 0x32], 0); // "TR2"
  signed.set(device.cert, 3);
  new DataView(signed.buffer).setUint32(3 + CERT_LENGTH, t >>> 0);
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.privateKey, signed),
  );
  const raw = new Uint8Array(CERT_LENGTH + 4 + 64);
  raw.set(signed.subarray(3), 0);
  raw.set(signature, CERT_LENGTH + 4); // WebCrypto's ECDSA signature is already raw r||s
  return `TR2:${base45(raw)}`;
}
