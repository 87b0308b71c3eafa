//! The error type every rejected promise and `error` event carries: the
//! server's stable error code (docs/protocol.md, "Error codes") or one of the
//! client's own codes below.

/**
 * Codes the client produces itself, besides the server's:
 * - `disconnected`: the command was sent but the connection closed before its
 *   reply, so whether the server ran it is unknown;
 * - `client_closed`: `disconnect()` was called while the command waited;
 * - `close_<N>`: the server closed with code N, one the client does not retry
 *   blindly (1002, 1007, 1009) or a 4001 without `getToken`.
 * - `token`: `getToken` threw.
 */
export class RingcastError extends Error {
  override readonly name = "RingcastError";

  constructor(
    /** The server's error code (`forbidden`, `rate_limited`, …) or a client code. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
