// The seam between WorldBridgeClient (sessions, handshake, credits, the protocol) and the wire under it, as
// ML-Agents separates its communicator: the client speaks only in whole multipart messages (a msgpack map, an
// optional pixel frame) and never sees a socket. ZmtpTransport is the real one (ZMTP 3.1 DEALER over TCP);
// tests plug in an in-memory one.
//
// All calls but Close come from the client thread, one at a time.
using System.Threading;

namespace WorldBridge.Core
{
    public interface ITransport
    {
        /// <summary>Open a new connection to the daemon, ready for messages (for ZMTP: TCP connected, greeting
        /// and READY exchanged), within options.ConnectTimeoutS (`options` are the client's). Throws when it
        /// cannot (TimeoutException, a SocketException, ZmtpException, ...); throws OperationCanceledException as
        /// soon as `cancel` is set. The client has closed the previous connection, if any, before.</summary>
        void Connect(ClientOptions options, WaitHandle cancel);

        /// <summary>True when Receive would not block waiting for the next message to begin (data is there, or
        /// the connection ended, so Receive throws); waits at most `microseconds`.</summary>
        bool Poll(int microseconds);

        /// <summary>Send one message: frame0[0..len0) and, when frame1 is not null, frame1[off1..off1+len1) as
        /// its second frame.</summary>
        void Send(byte[] frame0, int len0, byte[] frame1, int off1, int len1);

        /// <summary>Read what comes next into `message`: one whole message (returns true), or only the
        /// transport's own traffic, such as ZMTP PINGs, which it answers itself (returns false). Throws when
        /// the connection fails or the peer closes it (EndOfStreamException).</summary>
        bool Receive(ZmtpMessage message);

        /// <summary>Grows whenever anything arrives on the current connection, keep-alives included (the
        /// client's silence timeout watches it).</summary>
        long BytesReceived { get; }

        /// <summary>Transport-level pings (ZMTP PING) answered, over all connections so far.</summary>
        long PingsAnswered { get; }

        /// <summary>Close the current connection, if any. Safe to call more than once and from any thread:
        /// WorldBridgeClient.Stop calls it from the caller's thread to unblock a read stuck on a dead peer.</summary>
        void Close();
    }
}
