//! The part of the WebSocket API the client uses. The browser's `WebSocket`,
//! Node 22's global one and the `ws` package all fit it, so none of them is a
//! dependency: the app passes one in where there is no global.

export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // The events are typed `any` on purpose: each implementation has its own
  // event classes (DOM `MessageEvent`, `ws`'s `WebSocket.MessageEvent`), and
  // a narrower type here would make them unassignable. The client reads only
  // `data` of a message and `code` / `reason` of a close.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The environment's WebSocket, if it has one (browsers, Node ≥ 22). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/** A text frame's payload as a string, whatever type the implementation delivers. */
export function frameText(data: unknown): string {
  if (typeof data === "string") return data;
  // `ws` may hand over a Buffer (a Uint8Array); ArrayBuffer for binaryType "arraybuffer".
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(data as ArrayBuffer);
  }
  return String(data);
}
