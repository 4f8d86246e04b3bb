// The WebSocket side of the page: opens /ws (with ?token= from the page URL),
// parses events and turns close codes into plain words. No DOM here.

const CLOSE_WORDS = {
  1001: "The server is shutting down.",
  1008: "The server rejected the access token. Open this page as …/?token=YOUR_TOKEN " +
        "with the token the server was started with.",
  1009: "A message was too big for the server; the conversation was closed.",
  1011: "The server hit an internal error and closed the conversation.",
  1013: "The server is full (too many conversations at once). Try again in a moment.",
};

export function socketUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(`${scheme}//${location.host}/ws`);
  const token = new URLSearchParams(location.search).get("token");
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

export function closeInWords(code, reason, opened, host) {
  if (CLOSE_WORDS[code]) return CLOSE_WORDS[code];
  if (code === 1000) return null;
  if (!opened) return `Cannot reach the server at ${host}. Is \`duplex serve\` running?`;
  return `The connection to the server was lost (code ${code}${reason ? `: ${reason}` : ""}).`;
}

export class Connection {
  // onEvent(event), onAudio(ArrayBuffer), onClose({code, reason, words})
  constructor(url, { onOpen, onEvent, onAudio, onClose }) {
    this.url = url;
    this.opened = false;
    this.closedByUs = false;
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => { this.opened = true; onOpen?.(); };
    this.ws.onmessage = (e) => {
      if (typeof e.data !== "string") { onAudio(e.data); return; }
      let event;
      try { event = JSON.parse(e.data); } catch (_) { return; } // ignore what we cannot read
      if (event && typeof event.type === "string") onEvent(event);
    };
    this.ws.onclose = (e) => {
      const words = this.closedByUs ? null
        : closeInWords(e.code, e.reason, this.opened, new URL(url).host);
      onClose({ code: e.code, reason: e.reason, words });
    };
  }

  get open() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(event) {
    if (this.open) this.ws.send(JSON.stringify(event));
  }

  sendAudio(buffer) {
    // Drop frames rather than queue them without bound on a stalled socket.
    if (this.open && this.ws.bufferedAmount < 1 << 20) this.ws.send(buffer);
  }

  close() {
    this.closedByUs = true;
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "bye");
  }
}
