// ZMTP 3.1 (RFC 23 / RFC 37) for a DEALER socket, as docs/protocol.md section 8 describes: the 64-byte greeting
// with the NULL mechanism, READY with Socket-Type, short/long frames, multipart messages, PING -> PONG, ERROR.
// ZmtpConnection works over any Stream (a NetworkStream in the client, memory streams in tests); only one thread
// may use it at a time.
using System;
using System.IO;
using System.Net.Sockets;
using System.Text;

namespace WorldBridge.Core
{
    public sealed class ZmtpException : IOException
    {
        /// <summary>The peer's ERROR reason when it sent an ERROR command, else null.</summary>
        public readonly string PeerReason;
        public ZmtpException(string message, string peerReason = null) : base(message) { PeerReason = peerReason; }
    }

    /// <summary>One received message: its frames in reusable buffers (frame i is Frames[i][0..Lengths[i])).</summary>
    public sealed class ZmtpMessage
    {
        public const int MaxFrames = 8;
        public readonly byte[][] Frames = new byte[MaxFrames][];
        public readonly int[] Lengths = new int[MaxFrames];
        public int Count;

        /// <summary>Frames after the first are kept in exact-size arrays (an image frame can then be handed to
        /// APIs that take a whole byte[]); they are reallocated only when the size changes.</summary>
        internal byte[] Prepare(int index, int size)
        {
            var b = Frames[index];
            bool exact = index > 0;
            if (b == null || (exact ? b.Length != size : b.Length < size))
                Frames[index] = b = new byte[exact ? size : Math.Max(size, 256)];
            Lengths[index] = size;
            return b;
        }

        /// <summary>Swap frame `index`'s buffer with `other` (zero-copy hand-off to a consumer).</summary>
        public void SwapFrame(int index, ref byte[] other)
        {
            var mine = Frames[index];
            Frames[index] = other;
            other = mine;
        }
    }

    public static class Zmtp
    {
        public const byte More = 0x01, Long = 0x02, Command = 0x04;

        /// <summary>Signature, version 3.1, mechanism "NULL", as-server 0, filler.</summary>
        public static byte[] Greeting()
        {
            var g = new byte[64];
            g[0] = 0xff; g[9] = 0x7f; g[10] = 3; g[11] = 1;
            Encoding.ASCII.GetBytes("NULL", 0, 4, g, 12);
            return g;
        }

        /// <summary>Append one frame (header + body) to `dst` at `pos`; returns the new position.</summary>
        public static int WriteFrameHeader(byte[] dst, int pos, int bodyLength, bool more, bool command)
        {
            byte flags = (byte)((more ? More : 0) | (command ? Command : 0));
            if (bodyLength > 255)
            {
                dst[pos++] = (byte)(flags | Long);
                ulong n = (ulong)bodyLength;
                for (int i = 7; i >= 0; i--) dst[pos++] = (byte)(n >> (8 * i));
            }
            else
            {
                dst[pos++] = flags;
                dst[pos++] = (byte)bodyLength;
            }
            return pos;
        }

        public static int FrameHeaderSize(int bodyLength) { return bodyLength > 255 ? 9 : 2; }

        /// <summary>A whole command frame: name-length, name, data.</summary>
        public static byte[] CommandFrame(string name, byte[] data, int offset, int count)
        {
            int body = 1 + name.Length + count;
            var f = new byte[FrameHeaderSize(body) + body];
            int p = WriteFrameHeader(f, 0, body, false, true);
            f[p++] = (byte)name.Length;
            p += Encoding.ASCII.GetBytes(name, 0, name.Length, f, p);
            Buffer.BlockCopy(data, offset, f, p, count);
            return f;
        }

        public static byte[] Ready(string socketType)
        {
            const string prop = "Socket-Type";
            var value = Encoding.ASCII.GetBytes(socketType);
            var data = new byte[1 + prop.Length + 4 + value.Length];
            int p = 0;
            data[p++] = (byte)prop.Length;
            p += Encoding.ASCII.GetBytes(prop, 0, prop.Length, data, p);
            data[p++] = (byte)(value.Length >> 24); data[p++] = (byte)(value.Length >> 16);
            data[p++] = (byte)(value.Length >> 8); data[p++] = (byte)value.Length;
            Buffer.BlockCopy(value, 0, data, p, value.Length);
            return CommandFrame("READY", data, 0, data.Length);
        }

        public static byte[] Ping(ushort ttlDeciseconds, byte[] context)
        {
            var data = new byte[2 + context.Length];
            data[0] = (byte)(ttlDeciseconds >> 8); data[1] = (byte)ttlDeciseconds;
            Buffer.BlockCopy(context, 0, data, 2, context.Length);
            return CommandFrame("PING", data, 0, data.Length);
        }

        public static byte[] Pong(byte[] context, int offset, int count) { return CommandFrame("PONG", context, offset, count); }

        public static byte[] Error(string reason)
        {
            var r = Encoding.ASCII.GetBytes(reason);
            var data = new byte[1 + r.Length];
            data[0] = (byte)r.Length;
            Buffer.BlockCopy(r, 0, data, 1, r.Length);
            return CommandFrame("ERROR", data, 0, data.Length);
        }

        /// <summary>Name of a command frame body ("READY", "PING", ...), or null if malformed.</summary>
        public static string CommandName(byte[] body, int length)
        {
            if (length < 1 || body[0] + 1 > length) return null;
            return Encoding.ASCII.GetString(body, 1, body[0]);
        }

        /// <summary>The value of property `name` in a READY command body, or null.</summary>
        public static string ReadyProperty(byte[] body, int length, string name)
        {
            int p = 1 + body[0];
            while (p < length)
            {
                int nameLen = body[p++];
                if (p + nameLen + 4 > length) throw new ZmtpException("malformed READY properties");
                string prop = Encoding.ASCII.GetString(body, p, nameLen);
                p += nameLen;
                long valueLen = ((long)body[p] << 24) | ((long)body[p + 1] << 16) | ((long)body[p + 2] << 8) | body[p + 3];
                p += 4;
                if (p + valueLen > length) throw new ZmtpException("malformed READY properties");
                if (string.Equals(prop, name, StringComparison.OrdinalIgnoreCase))
                    return Encoding.ASCII.GetString(body, p, (int)valueLen);
                p += (int)valueLen;
            }
            return null;
        }
    }

    /// <summary>A ZMTP 3.1 DEALER end over a byte stream.</summary>
    public sealed class ZmtpConnection : IDisposable
    {
        /// <summary>Frames larger than this are refused (a protocol v1 frame is at most a few MiB).</summary>
        public long MaxFrameBytes = 64L << 20;

        readonly Stream _stream;
        readonly Socket _socket; // for Poll; null over a plain stream
        readonly byte[] _in = new byte[64 * 1024];
        int _inPos, _inLen;
        byte[] _out = new byte[4096];
        byte[] _cmd = new byte[512];

        public string PeerSocketType { get; private set; }
        public int PingsAnswered { get; private set; }
        /// <summary>Incremented whenever any byte arrives (for a liveness timeout above this layer).</summary>
        public long BytesReceived { get; private set; }

        public ZmtpConnection(Stream stream, Socket socket = null) { _stream = stream; _socket = socket; }

        /// <summary>Exchange greetings and READY commands. Throws ZmtpException when the peer is not a ZMTP 3
        /// NULL-mechanism ROUTER/DEALER.</summary>
        public void Handshake(string socketType = "DEALER")
        {
            var g = Zmtp.Greeting();
            _stream.Write(g, 0, g.Length);
            _stream.Flush();
            var peer = new byte[64];
            ReadExactly(peer, 0, 64);
            if (peer[0] != 0xff || peer[9] != 0x7f) throw new ZmtpException("peer is not a ZMTP endpoint (bad signature)");
            if (peer[10] != 3) throw new ZmtpException("peer speaks ZMTP " + peer[10] + ".x, need 3.x");
            string mechanism = Encoding.ASCII.GetString(peer, 12, 20).TrimEnd('\0');
            if (mechanism != "NULL") throw new ZmtpException("peer wants security mechanism " + mechanism + ", only NULL is supported");
            var ready = Zmtp.Ready(socketType);
            _stream.Write(ready, 0, ready.Length);
            _stream.Flush();

            bool more, command;
            int n = ReadFrame(ref _cmd, out more, out command);
            if (!command) throw new ZmtpException("peer sent a message before READY");
            string name = Zmtp.CommandName(_cmd, n);
            if (name == "ERROR") throw PeerError(_cmd, n);
            if (name != "READY") throw new ZmtpException("expected READY, got " + (name ?? "a malformed command"));
            PeerSocketType = Zmtp.ReadyProperty(_cmd, n, "Socket-Type");
            if (PeerSocketType != "ROUTER" && PeerSocketType != "DEALER" && PeerSocketType != "REP")
                throw new ZmtpException("a DEALER cannot talk to a " + (PeerSocketType ?? "peer without Socket-Type"));
        }

        /// <summary>True when a read would not block (buffered bytes, or the socket has data or was closed).</summary>
        public bool Poll(int microseconds)
        {
            if (_inPos < _inLen) return true;
            if (_socket != null) return _socket.Poll(microseconds, SelectMode.SelectRead);
            return true; // plain stream: reads block at most until data or end
        }

        /// <summary>Send one message of one or two frames (frame1 may be null).</summary>
        public void Send(byte[] frame0, int len0, byte[] frame1 = null, int off1 = 0, int len1 = 0)
        {
            bool two = frame1 != null;
            int size = Zmtp.FrameHeaderSize(len0) + len0 + (two ? Zmtp.FrameHeaderSize(len1) + len1 : 0);
            if (_out.Length < size) _out = new byte[Math.Max(size, _out.Length * 2)];
            int p = Zmtp.WriteFrameHeader(_out, 0, len0, two, false);
            Buffer.BlockCopy(frame0, 0, _out, p, len0);
            p += len0;
            if (two)
            {
                p = Zmtp.WriteFrameHeader(_out, p, len1, false, false);
                Buffer.BlockCopy(frame1, off1, _out, p, len1);
                p += len1;
            }
            _stream.Write(_out, 0, p);
            _stream.Flush();
        }

        /// <summary>Read what comes next: one whole message (returns true), or only commands (PINGs are
        /// answered at once; returns false) so that a PING on an idle connection never leaves the caller blocked
        /// waiting for a message. Blocks only while a frame is incomplete. Throws ZmtpException on an ERROR
        /// command, EndOfStreamException when the peer closes.</summary>
        public bool Receive(ZmtpMessage msg)
        {
            msg.Count = 0;
            while (true)
            {
                bool more, command;
                if (msg.Count == ZmtpMessage.MaxFrames) throw new ZmtpException("message has too many frames");
                int size = ReadFrameHeader(out more, out command);
                if (command)
                {
                    if (size > _cmd.Length) _cmd = new byte[size];
                    ReadExactly(_cmd, 0, size);
                    OnCommand(_cmd, size);
                    if (msg.Count == 0) return false; // between messages: let the caller poll again
                    continue;
                }
                var body = msg.Prepare(msg.Count, size);
                ReadExactly(body, 0, size);
                msg.Count++;
                if (!more) return true;
            }
        }

        void OnCommand(byte[] body, int n)
        {
            string name = Zmtp.CommandName(body, n);
            if (name == "PING")
            {
                // PING: name, 2-byte TTL, up to 16 bytes of context; PONG echoes the context at once.
                int ctx = 1 + 4 + 2;
                int ctxLen = Math.Max(0, Math.Min(16, n - ctx));
                var pong = Zmtp.Pong(body, Math.Min(ctx, n), ctxLen);
                _stream.Write(pong, 0, pong.Length);
                _stream.Flush();
                PingsAnswered++;
            }
            else if (name == "ERROR") throw PeerError(body, n);
            // PONG and unknown commands: nothing to do.
        }

        static ZmtpException PeerError(byte[] body, int n)
        {
            int p = 1 + 5;
            string reason = p < n ? Encoding.ASCII.GetString(body, p + 1, Math.Min(body[p], n - p - 1)) : "";
            return new ZmtpException("peer sent ERROR: " + reason, reason);
        }

        int ReadFrame(ref byte[] buf, out bool more, out bool command)
        {
            int size = ReadFrameHeader(out more, out command);
            if (buf.Length < size) buf = new byte[size];
            ReadExactly(buf, 0, size);
            return size;
        }

        int ReadFrameHeader(out bool more, out bool command)
        {
            byte flags = ReadByte();
            if ((flags & 0xf8) != 0) throw new ZmtpException("bad frame flags 0x" + flags.ToString("x2"));
            more = (flags & Zmtp.More) != 0;
            command = (flags & Zmtp.Command) != 0;
            ulong size;
            if ((flags & Zmtp.Long) != 0)
            {
                size = 0;
                for (int i = 0; i < 8; i++) size = (size << 8) | ReadByte();
            }
            else size = ReadByte();
            if (size > (ulong)MaxFrameBytes) throw new ZmtpException("frame of " + size + " bytes is over the limit");
            return (int)size;
        }

        byte ReadByte()
        {
            if (_inPos == _inLen) Fill();
            return _in[_inPos++];
        }

        void ReadExactly(byte[] dst, int offset, int count)
        {
            while (count > 0)
            {
                if (_inPos == _inLen)
                {
                    if (count >= _in.Length) // large body: read straight into the destination
                    {
                        int got = _stream.Read(dst, offset, count);
                        if (got <= 0) throw new EndOfStreamException("connection closed by peer");
                        BytesReceived += got;
                        offset += got; count -= got;
                        continue;
                    }
                    Fill();
                }
                int n = Math.Min(count, _inLen - _inPos);
                Buffer.BlockCopy(_in, _inPos, dst, offset, n);
                _inPos += n; offset += n; count -= n;
            }
        }

        void Fill()
        {
            int got = _stream.Read(_in, 0, _in.Length);
            if (got <= 0) throw new EndOfStreamException("connection closed by peer");
            BytesReceived += got;
            _inPos = 0; _inLen = got;
        }

        public void Dispose() { _stream.Dispose(); }
    }
}
