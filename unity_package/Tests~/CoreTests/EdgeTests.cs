// Edge cases beyond the vectors: every msgpack width on read, smallest widths on write, truncation, decoders
// that accept any key order and unknown keys; and the client thread against a scripted fake daemon (PING
// during a session, ERROR command, expired session, version mismatch, stop while reconnecting).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using WorldBridge.Core;
using static WorldBridge.CoreTests.Program;

namespace WorldBridge.CoreTests
{
    public static class EdgeTests
    {
        static byte[] H(string hex)
        {
            hex = hex.Replace(" ", "");
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }

        static string Written(Action<MsgPackWriter> write)
        {
            var w = new MsgPackWriter(4);
            write(w);
            return Hex(w.Buffer, w.Length);
        }

        public static void IntegersUseTheSmallestEncoding()
        {
            var cases = new Dictionary<long, string>
            {
                { 0, "00" }, { 127, "7f" }, { 128, "cc80" }, { 255, "ccff" }, { 256, "cd0100" }, { 65535, "cdffff" },
                { 65536, "ce00010000" }, { 4294967295, "ceffffffff" }, { 4294967296, "cf0000000100000000" },
                { long.MaxValue, "cf7fffffffffffffff" }, { -1, "ff" }, { -32, "e0" }, { -33, "d0df" }, { -128, "d080" },
                { -129, "d1ff7f" }, { -32768, "d18000" }, { -32769, "d2ffff7fff" }, { int.MinValue, "d280000000" },
                { -2147483649, "d3ffffffff7fffffff" }, { long.MinValue, "d38000000000000000" },
            };
            foreach (var kv in cases) Equal(kv.Value, Written(w => w.WriteInt(kv.Key)), "WriteInt(" + kv.Key + ")");
            Equal("cfffffffffffffffff", Written(w => w.WriteUInt(ulong.MaxValue)), "WriteUInt(max)");
            Equal("cb3ff8000000000000", Written(w => w.WriteDouble(1.5)), "doubles are float64");
            Equal("cb0000000000000000", Written(w => w.WriteObject(0.0f)), "float is written as float64");
        }

        public static void IntegersReadFromEveryEncoding()
        {
            var cases = new Dictionary<string, long>
            {
                { "05", 5 }, { "cc05", 5 }, { "cd0005", 5 }, { "ce00000005", 5 }, { "cf0000000000000005", 5 },
                { "d005", 5 }, { "d10005", 5 }, { "d200000005", 5 }, { "d30000000000000005", 5 },
                { "fb", -5 }, { "d0fb", -5 }, { "d1fffb", -5 }, { "d2fffffffb", -5 }, { "d3fffffffffffffffb", -5 },
                { "d38000000000000000", long.MinValue }, { "cf7fffffffffffffff", long.MaxValue },
            };
            foreach (var kv in cases) Equal(kv.Value, new MsgPackReader(H(kv.Key)).ReadInt64(), "ReadInt64(" + kv.Key + ")");
            Equal(ulong.MaxValue, new MsgPackReader(H("cfffffffffffffffff")).ReadUInt64(), "uint64 max");
            Equal(ulong.MaxValue, new MsgPackReader(H("cfffffffffffffffff")).ReadObject(), "uint64 max as object");
            Throws<MsgPackException>(() => new MsgPackReader(H("cfffffffffffffffff")).ReadInt64(), "uint64 max does not fit int64");
            Throws<MsgPackException>(() => new MsgPackReader(H("ff")).ReadUInt64(), "-1 is not unsigned");
            Throws<MsgPackException>(() => new MsgPackReader(H("ce80000000")).ReadInt32(), "2^31 does not fit int32");
        }

        public static void NumbersAcceptFloat32AndIntegers()
        {
            Equal(1.5, new MsgPackReader(H("ca3fc00000")).ReadDouble(), "float32 1.5");
            Equal(-2.0, new MsgPackReader(H("fe")).ReadDouble(), "int as number");
            Equal(4294967296.0, new MsgPackReader(H("cf0000000100000000")).ReadDouble(), "uint64 as number");
            Equal(0.25, new MsgPackReader(H("ca3e800000")).ReadObject(), "float32 as object is a double");
            Throws<MsgPackException>(() => new MsgPackReader(H("a161")).ReadDouble(), "a string is not a number");
        }

        public static void StringsBinsArraysMapsInEveryWidth()
        {
            Equal("ab", new MsgPackReader(H("a26162")).ReadString(), "fixstr");
            Equal("ab", new MsgPackReader(H("d9026162")).ReadString(), "str8");
            Equal("ab", new MsgPackReader(H("da00026162")).ReadString(), "str16");
            Equal("ab", new MsgPackReader(H("db000000026162")).ReadString(), "str32");
            Equal("0102", Hex(new MsgPackReader(H("c6000000020102")).ReadBin(), 2), "bin32");
            Equal("0102", Hex(new MsgPackReader(H("c500020102")).ReadBin(), 2), "bin16");
            Equal(2, ((List<object>)new MsgPackReader(H("dd000000020102")).ReadObject()).Count, "array32");
            var m = (MsgMap)new MsgPackReader(H("df00000001a16101")).ReadObject();
            Equal(1L, m["a"], "map32");
            var w = new MsgPackWriter();
            w.WriteString(new string('x', 70000));
            Equal("db00011170", Hex(w.Buffer, 5), "str32 header for 70000 bytes");
            w.Clear();
            w.WriteString("h\u00e9");
            Equal("a368c3a9", Hex(w.Buffer, w.Length), "UTF-8 length counts bytes");
            w.Clear();
            w.WriteBin(new byte[256]);
            Equal("c50100", Hex(w.Buffer, 3), "bin16 header");
            w.Clear();
            w.WriteArrayHeader(65536); w.WriteMapHeader(16);
            Equal("dd00010000de0010", Hex(w.Buffer, w.Length), "array32 / map16 headers");
        }

        public static void TruncatedOrHostileDataIsRejected()
        {
            foreach (var hex in new[] { "", "cd00", "a3616263"  .Substring(0, 6), "c4ff00", "dc1000", "dfffffffff", "cb0000", "c1" })
                Throws<MsgPackException>(() => new MsgPackReader(H(hex)).ReadObject(), "bad data " + hex);
            Throws<MsgPackException>(() => new MsgPackReader(H("810101")).ReadObject(), "non-string map key");
            Throws<MsgPackException>(() => new MsgPackReader(H("d90261ff")).ReadString(), "invalid UTF-8");
            Throws<MsgPackException>(() => new MsgPackReader(H("d40000")).ReadObject(), "ext types are refused");
            var r = new MsgPackReader(H("92d40000c0"));
            r.Skip();
            Check(r.AtEnd, "Skip steps over ext values inside containers");
        }

        public static void DecodersAcceptAnyKeyOrderUnknownKeysAndNil()
        {
            var w = new MsgPackWriter();
            w.WriteMapHeader(8);
            w.WriteString("future_key"); w.WriteArrayHeader(1); w.WriteMapHeader(0);
            w.WriteString("input_t"); w.WriteInt(3);                 // an int where a float is expected
            w.WriteString("width"); w.WriteInt(2);
            w.WriteString("pose"); w.WriteMapHeader(2);
            w.WriteString("q"); w.WriteArrayHeader(4); w.WriteInt(0); w.WriteInt(0); w.WriteInt(0); w.WriteInt(1);
            w.WriteString("p"); w.WriteArrayHeader(3); w.WriteDouble(1); w.WriteDouble(2); w.WriteDouble(3);
            w.WriteString("type"); w.WriteString("frame");
            w.WriteString("format"); w.WriteString("rgba8");
            w.WriteString("height"); w.WriteInt(3);
            w.WriteString("episode"); w.WriteNil();
            var r = new MsgPackReader();
            Equal(MessageKind.Frame, Protocol.ReadKind(r, w.Buffer, w.Length), "kind with type not first");
            var h = new FrameHeader { Episode = 7 };
            Protocol.ReadFrame(r, w.Buffer, w.Length, h);
            Equal(3.0, h.InputT, "input_t from an int"); Equal(2, h.Width, "width"); Equal(3, h.Height, "height");
            Equal(PixelFormat.Rgba8, h.Format, "format"); Equal(2.0, h.Pose.Py, "pose.p"); Equal(1.0, h.Pose.Qw, "pose.q");
            Equal(7L, h.Episode, "nil leaves the default"); Equal(24, h.ExpectedPayloadBytes, "rgba8 bytes");

            w.Clear();
            w.WriteMapHeader(2); w.WriteString("code"); w.WriteInt(404); w.WriteString("type"); w.WriteString("error");
            Equal(MessageKind.Error, Protocol.ReadKind(r, w.Buffer, w.Length), "error kind");
            var e = Protocol.ReadError(w.Buffer, w.Length);
            Equal(404, e.Code, "code"); Equal("", e.Name, "missing name");
            w.Clear();
            w.WriteMapHeader(1); w.WriteString("type"); w.WriteString("teleported");
            Equal(MessageKind.Unknown, Protocol.ReadKind(r, w.Buffer, w.Length), "unknown type");
            w.Clear();
            w.WriteArrayHeader(0);
            Throws<MsgPackException>(() => Protocol.ReadKind(r, w.Buffer, w.Length), "not a map");
        }

        public static void ZmtpRefusesOtherMechanismsAndBadFlags()
        {
            var g = Zmtp.Greeting();
            System.Text.Encoding.ASCII.GetBytes("CURVE", 0, 5, g, 12);
            Throws<ZmtpException>(() => new ZmtpConnection(new FakeStream(g)).Handshake(), "CURVE mechanism");
            var g2 = Zmtp.Greeting();
            g2[10] = 2;
            Throws<ZmtpException>(() => new ZmtpConnection(new FakeStream(g2)).Handshake(), "ZMTP 2");
            Throws<ZmtpException>(() => new ZmtpConnection(new FakeStream(Zmtp.Greeting(), Zmtp.Ready("PUB"))).Handshake(), "PUB peer");
            Throws<ZmtpException>(() => new ZmtpConnection(new FakeStream(H("0801ff"))).Receive(new ZmtpMessage()), "reserved flag bits");
            Throws<System.IO.EndOfStreamException>(() => new ZmtpConnection(new FakeStream(H("0105"))).Receive(new ZmtpMessage()), "peer closed mid-message");
            // a READY with several properties (libzmq's ROUTER may add Identity)
            var ready = H("0426055245414459" + "084964656e74697479" + "00000000" + "0b536f636b65742d54797065" + "00000006" + "524f55544552");
            ready[1] = (byte)(ready.Length - 2);
            var c = new ZmtpConnection(new FakeStream(Zmtp.Greeting(), ready));
            c.Handshake();
            Equal("ROUTER", c.PeerSocketType, "Socket-Type after another property");
        }

        public static void AddressesParse()
        {
            string host; int port;
            WorldBridgeClient.ParseAddress("tcp://127.0.0.1:5557", out host, out port);
            Equal("127.0.0.1", host, "host"); Equal(5557, port, "port");
            WorldBridgeClient.ParseAddress("localhost:9", out host, out port);
            Equal("localhost", host, "host without scheme");
            WorldBridgeClient.ParseAddress("tcp://[::1]:7000", out host, out port);
            Equal("::1", host, "IPv6 host");
            Throws<ArgumentException>(() => WorldBridgeClient.ParseAddress("tcp://nohost", out host, out port), "no port");
        }

        // ---------------------------------------------------------------------------- fake daemon tests

        public static void StopWhileReconnectingIsQuick()
        {
            int port = FreePort();
            var c = new WorldBridgeClient(new ClientOptions { Address = "tcp://127.0.0.1:" + port, ReconnectMinDelayS = 0.05, ReconnectMaxDelayS = 0.2 });
            c.Start();
            Thread.Sleep(300);
            Check(c.State == ClientState.Connecting || c.State == ClientState.Reconnecting, "state while nothing listens: " + c.State);
            Check(c.LastDisconnectReason.Length > 0, "a reason for not being connected");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            c.Dispose();
            Check(sw.ElapsedMilliseconds < 1500, "Dispose took " + sw.ElapsedMilliseconds + " ms");
            Check(!c.IsAlive, "thread still alive after Dispose");
            Equal(ClientState.Stopped, c.State, "state after Dispose");
            c.Dispose(); // twice is fine
        }

        public static void FakeDaemonSessionPingsErrorsAndReconnects()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var c = new WorldBridgeClient(new ClientOptions
            {
                Address = "tcp://127.0.0.1:" + port, Credits = 2, ReconnectMinDelayS = 0.05, ReconnectMaxDelayS = 0.1,
                IoTimeoutMs = 300, // a read blocked after a lone PING would fail the connection within the test
                Hello = new HelloRequest { Width = 2, Height = 1, Format = PixelFormat.Rgb8 },
            });
            var errors = new List<int>();
            c.ErrorReceived += e => { lock (errors) errors.Add(e.Code); };
            c.Start();
            try
            {
                // session 1: welcome, a ZMTP PING (must be answered while the session runs), a frame, then 408
                var d = FakeDaemon.Accept(listener);
                var hello = d.Receive();
                Equal("hello", hello["type"], "first message");
                Equal(2L, hello["credits"], "hello grants the configured credits");
                d.SendWelcome("s1");
                WaitFor(() => c.IsConnected, 3000, "connected");
                d.SendRaw(Zmtp.Ping(100, new byte[] { 7, 8 }));
                Bytes(Zmtp.Pong(new byte[] { 7, 8 }, 0, 2), d.ReadRawCommand(), "PONG from the client thread");
                Thread.Sleep(700); // a PING on an idle connection (no frame follows) must not stall the client
                Check(c.IsConnected && c.Sessions == 1, "still in the first session after an idle PING: " + c.LastDisconnectReason);
                d.SendFrame(0, new byte[] { 1, 2, 3, 4, 5, 6 });
                WaitFor(() => c.FramesReceived == 1, 3000, "frame received");
                var credit = d.ReceiveUntil("credit");
                Equal(1L, credit["n"], "one credit to refill the one frame");
                var header = new FrameHeader();
                byte[] pixels = null;
                int length;
                Check(c.TryTakeFrame(header, ref pixels, out length), "frame in the slot");
                Equal("010203040506", Hex(pixels, length), "pixels");
                Check(!c.TryTakeFrame(header, ref pixels, out length), "slot empty after take");

                d.SendError(408, "expired");
                var again = d.ReceiveUntil("hello");
                Equal("hello", again["type"], "a new hello after 408 on the same connection");
                d.SendWelcome("s2");
                WaitFor(() => c.Sessions == 2, 3000, "second session");

                // an ERROR command closes the connection: the client reconnects and says hello again
                d.SendRaw(Zmtp.Error("go away"));
                d.Close();
                var d2 = FakeDaemon.Accept(listener);
                Equal("hello", d2.Receive()["type"], "hello after reconnect");
                d2.SendWelcome("s3");
                WaitFor(() => c.Sessions == 3 && c.IsConnected, 3000, "third session");

                // 426: permanent, no retry
                d2.SendError(426, "version");
                WaitFor(() => c.State == ClientState.Failed, 3000, "failed after 426");
                WaitFor(() => !c.IsAlive, 3000, "thread ends after a permanent error");
                lock (errors) Equal("408,426", string.Join(",", errors), "errors seen");
                Equal(426, c.LastError.Code, "LastError");
                d2.Close();
                var events = new List<ClientEventKind>();
                ClientEvent ev;
                while (c.TryDequeueEvent(out ev)) events.Add(ev.Kind);
                Equal("Connected,Error,Connected,Disconnected,Connected,Error,Disconnected", string.Join(",", events), "event queue");
            }
            finally
            {
                c.Dispose();
                listener.Stop();
            }
            Check(!c.IsAlive, "thread joined");
        }

        public static void InputsCoalesceWhileNotConnected()
        {
            // Before the welcome nothing is sent: the newest input wins; look deltas made while disconnected
            // are dropped at the welcome (no jump), move and buttons are kept.
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var c = new WorldBridgeClient(new ClientOptions { Address = "tcp://127.0.0.1:" + port, Credits = 1 });
            try
            {
                c.SendInput(new InputState { MoveY = 1, LookYaw = 2 });
                c.SendInput(new InputState { MoveX = -1, LookYaw = 3, Buttons = InputState.ButtonRun });
                c.Start();
                var d = FakeDaemon.Accept(listener);
                d.Receive();
                d.SendWelcome("s1");
                var input = d.ReceiveUntil("input");
                Equal(1L, input["seq"], "seq");
                Equal("-1,0", string.Join(",", ((List<object>)input["move"]).Select(x => x.ToString())), "newest move");
                Equal("0,0", string.Join(",", ((List<object>)input["look"]).Select(x => x.ToString())), "look dropped at welcome");
                Equal(1L, input["buttons"], "buttons");
                Check(!input.ContainsKey("pose") && !input.ContainsKey("fov_deg"), "no pose/fov unless set");
                d.Close();
            }
            finally
            {
                c.Dispose();
                listener.Stop();
            }
        }

        // 1.3: Guidance.Validate refuses what the daemon would, naming the field; SendInput checks before queueing.
        public static void GuidanceIsValidatedLocally()
        {
            Func<Guidance> ok = () => new Guidance
            {
                Width = 4, Height = 2, Colour = new byte[24], Depth = new byte[32], Ids = new byte[16],
            };
            ok().Validate();
            var half = ok(); half.DepthFormat = GuidanceDepthFormat.F16; half.Depth = new byte[16]; half.Validate();
            Action<Action<Guidance>, string> refused = (change, field) =>
            {
                var g = ok();
                change(g);
                try { g.Validate(); }
                catch (ArgumentException e)
                {
                    Check(e.Message.StartsWith(field, StringComparison.Ordinal), "the message names " + field + ": " + e.Message);
                    return;
                }
                throw new TestFailure("Validate took a guidance with a bad " + field);
            };
            refused(g => g.Depth = new byte[16], "guidance.depth is 16 bytes, expected 32 (4x2 f32)");
            refused(g => g.DepthFormat = GuidanceDepthFormat.F16, "guidance.depth is 32 bytes, expected 16 (4x2 f16)");
            refused(g => g.Colour = new byte[32], "guidance.colour is 32 bytes, expected 24 (4x2 rgb8)");
            refused(g => g.Ids = new byte[8], "guidance.ids is 8 bytes, expected 16 (4x2 u16)");
            refused(g => g.Width = 0, "guidance.width");
            refused(g => { g.Colour = null; g.Depth = null; g.Ids = null; }, "guidance has no buffer");
            refused(g => g.Depth = Guidance.EncodeDepth(new[] { 1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f }, GuidanceDepthFormat.F32).Select((b, i) => i >= 28 ? (byte)(i == 31 ? 0x7f : i == 30 ? 0xc0 : 0) : b).ToArray(), "guidance.depth holds NaN");
            refused(g => { g.DepthFormat = GuidanceDepthFormat.F16; g.Depth = new byte[16]; g.Depth[15] = 0x7e; }, "guidance.depth holds NaN");
            var inf = ok(); inf.Depth = Guidance.EncodeDepth(new[] { float.PositiveInfinity, 0f, -1f, 1f, float.NaN, 2f, 3f, 4f }, GuidanceDepthFormat.F32);
            inf.Validate(); // +inf, 0 and negatives mean "no surface"; EncodeDepth turns NaN into 0
            Equal(0f, Guidance.DecodeDepth(inf.Depth, GuidanceDepthFormat.F32)[4], "NaN encoded as 0");

            var offer = new GuidanceOffer { Buffers = new[] { "colour", "depth" }, Width = 8, Height = 4, Scales = new[] { 1, 2 } };
            ok().Validate(offer);
            var noDepth = ok(); noDepth.Depth = null;
            Throws<ArgumentException>(() => noDepth.Validate(offer), "a buffer the world reads is missing");
            var big = new Guidance { Width = 8, Height = 2, Colour = new byte[48], Depth = new byte[64] };
            Throws<ArgumentException>(() => big.Validate(offer), "a size the world does not take");

            // SendInput refuses before queueing (the client need not even be started)
            using (var c = new WorldBridgeClient(new ClientOptions()))
            {
                var bad = ok(); bad.Ids = new byte[3];
                Throws<ArgumentException>(() => c.SendInput(new InputState(), bad), "SendInput with bad guidance");
                c.SendInput(new InputState(), ok());
            }
        }

        // binary16 as numpy's astype(np.float16) rounds: nearest even, overflow to inf, subnormals
        public static void HalfFloatsRoundLikeNumpy()
        {
            float[] values = { 0f, -0f, 1f, 0.1f, 1f / 3, 65504f, 65519f, 65520f, 1e9f, -1e9f, float.PositiveInfinity, float.NegativeInfinity,
                               6e-8f, 2.9e-8f, 3e-8f, 1e-10f, 6.1e-5f, 5.9e-5f, 2049f, 2051f, 1.00146484375f, 1.00048828125f, 4.57763671875e-05f };
            ushort[] expected = { 0x0, 0x8000, 0x3c00, 0x2e66, 0x3555, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0xfc00,
                                  0x1, 0x0, 0x1, 0x0, 0x3ff, 0x3de, 0x6800, 0x6802, 0x3c02, 0x3c00, 0x300 };
            for (int i = 0; i < values.Length; i++)
                Equal(expected[i].ToString("x4"), Guidance.HalfFromFloat(values[i]).ToString("x4"), "half of " + values[i].ToString("R"));
            for (int h = 0; h < 0x10000; h++)
            {
                if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) continue; // NaN
                Equal(h, (int)Guidance.HalfFromFloat(Guidance.FloatFromHalf((ushort)h)), "half round trip of " + h.ToString("x4"));
            }
            Check(float.IsNaN(Guidance.FloatFromHalf(0x7e00)) && (Guidance.HalfFromFloat(float.NaN) & 0x7c00) == 0x7c00 && (Guidance.HalfFromFloat(float.NaN) & 0x3ff) != 0, "NaN stays NaN");
        }

        // ------------------------------------------------------------------------------------- helpers

        static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public static void WaitFor(Func<bool> cond, int ms, string what)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (!cond())
            {
                if (sw.ElapsedMilliseconds > ms) throw new TestFailure("timed out waiting for: " + what);
                Thread.Sleep(5);
            }
        }

        public static void Throws<T>(Action a, string what) where T : Exception
        {
            try { a(); }
            catch (T) { return; }
            catch (Exception e) { throw new TestFailure(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message); }
            throw new TestFailure(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }

    /// <summary>A scripted ROUTER end built from the same ZMTP code (tests only).</summary>
    sealed class FakeDaemon
    {
        readonly TcpClient _tcp;
        readonly ZmtpConnection _conn;
        readonly ZmtpMessage _msg = new ZmtpMessage();
        readonly System.IO.Stream _stream;

        FakeDaemon(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
            _stream.ReadTimeout = 3000;
            _conn = new ZmtpConnection(_stream, tcp.Client);
            _conn.Handshake("ROUTER");
        }

        public static FakeDaemon Accept(TcpListener l)
        {
            var ar = l.BeginAcceptTcpClient(null, null);
            if (!ar.AsyncWaitHandle.WaitOne(3000)) throw new TestFailure("client did not connect");
            return new FakeDaemon(l.EndAcceptTcpClient(ar));
        }

        public MsgMap Receive()
        {
            while (!_conn.Receive(_msg)) { }
            return (MsgMap)new MsgPackReader(_msg.Frames[0], 0, _msg.Lengths[0]).ReadObject();
        }

        public MsgMap ReceiveUntil(string type)
        {
            for (int i = 0; i < 50; i++)
            {
                var m = Receive();
                if ((string)m["type"] == type) return m;
            }
            throw new TestFailure("no " + type + " message");
        }

        public byte[] ReadRawCommand()
        {
            // the next bytes on the wire must be one command frame (short)
            var head = new byte[2];
            ReadExactly(head);
            var body = new byte[head[1]];
            ReadExactly(body);
            return head.Concat(body).ToArray();
        }

        void ReadExactly(byte[] b)
        {
            int off = 0;
            while (off < b.Length)
            {
                int n = _stream.Read(b, off, b.Length - off);
                if (n <= 0) throw new TestFailure("closed");
                off += n;
            }
        }

        public void SendRaw(byte[] bytes) { _stream.Write(bytes, 0, bytes.Length); }

        void Send(MsgMap m, byte[] payload = null)
        {
            var w = new MsgPackWriter();
            w.WriteObject(m);
            if (payload == null) _conn.Send(w.Buffer, w.Length);
            else _conn.Send(w.Buffer, w.Length, payload, 0, payload.Length);
        }

        public void SendWelcome(string session)
        {
            var m = new MsgMap();
            m["type"] = "welcome"; m["major"] = 1; m["minor"] = 0; m["session"] = session; m["world"] = "fake";
            m["width"] = 2; m["height"] = 1; m["format"] = "rgb8"; m["row_order"] = "bottom_up"; m["jpeg_quality"] = 85;
            m["fov_deg"] = 60.0; m["capabilities"] = new List<object>();
            Send(m);
        }

        public void SendFrame(long seq, byte[] pixels)
        {
            var m = new MsgMap();
            m["type"] = "frame"; m["seq"] = seq; m["input_seq"] = -1; m["input_t"] = 0.0; m["episode"] = 0;
            m["width"] = 2; m["height"] = 1; m["format"] = "rgb8"; m["row_order"] = "bottom_up";
            Send(m, pixels);
        }

        public void SendError(int code, string name)
        {
            var m = new MsgMap();
            m["type"] = "error"; m["code"] = code; m["name"] = name; m["message"] = "test"; m["ref"] = "";
            Send(m);
        }

        public void Close() { _tcp.Close(); }
    }
}
