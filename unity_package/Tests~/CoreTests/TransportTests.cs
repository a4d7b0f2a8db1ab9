// WorldBridgeClient over an in-memory ITransport (no socket, no ZMTP): what the client writes is the protocol
// vectors' bytes, and what the fake daemon sends surfaces as the documented events and states.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using WorldBridge.Core;
using static WorldBridge.CoreTests.Program;

namespace WorldBridge.CoreTests
{
    public static class TransportTests
    {
        static byte[] Vector(string file) { return File.ReadAllBytes(Path.Combine(VectorTests.Dir, file)); }

        public static void ClientSpeaksTheVectorsThroughAnyTransport()
        {
            var t = new FakeTransport();
            // hello.msgpack asks for 128x128 rgb8 bottom_up with 2 credits; the rest are the defaults
            var c = new WorldBridgeClient(new ClientOptions { Credits = 2, Hello = new HelloRequest { Width = 128, Height = 128 } }, t);
            var errors = new List<string>();
            c.ErrorReceived += e => { lock (errors) errors.Add(e.Code + " " + e.Name); };
            c.Start();
            try
            {
                Bytes(Vector("hello.msgpack"), t.WaitSent(0)[0], "hello written by the client");
                Equal(1, t.WaitSent(0).Length, "hello has one frame");

                t.Push(Vector("welcome.msgpack"));
                EdgeTests.WaitFor(() => c.IsConnected, 3000, "connected after the welcome");
                Equal("9f2c01", c.Welcome.Session, "session from the welcome");

                t.Push(Vector("frame.msgpack"), Vector("frame.payload.bin"));
                var credit = (MsgMap)new MsgPackReader(t.WaitSent(1)[0]).ReadObject();
                Equal("credit", credit["type"], "the message after the frame");
                Equal(1L, credit["n"], "one credit to replace the frame received");
                var header = new FrameHeader();
                byte[] pixels = null;
                int length;
                Check(c.TryTakeFrame(header, ref pixels, out length), "frame in the slot");
                Bytes(Vector("frame.payload.bin"), pixels, length, "pixels handed over");

                t.Push(Vector("error.msgpack")); // 422 bad_field: reported, the session goes on
                EdgeTests.WaitFor(() => c.LastError != null, 3000, "422 reported");
                Equal(422, c.LastError.Code, "LastError.Code");
                Check(c.IsConnected, "still connected after a 422: " + c.State);

                var e426 = new MsgPackWriter();
                var m = new MsgMap();
                m["type"] = "error"; m["code"] = 426; m["name"] = "version"; m["message"] = "major 2"; m["ref"] = "hello";
                e426.WriteObject(m);
                t.Push(e426.ToArray()); // permanent: Failed, the thread ends, no reconnect
                EdgeTests.WaitFor(() => !c.IsAlive, 3000, "thread ends after 426");
                Equal(ClientState.Failed, c.State, "state after 426");
                Equal(1, t.Connects, "connects (no retry after a permanent error)");
                Check(t.Closes >= 1 && !t.IsOpen, "transport closed");
                lock (errors) Equal("422 bad_field,426 version", string.Join(",", errors), "ErrorReceived");
                var events = new List<ClientEventKind>();
                ClientEvent ev;
                while (c.TryDequeueEvent(out ev)) events.Add(ev.Kind);
                Equal("Connected,Error,Error,Disconnected", string.Join(",", events), "event queue");
            }
            finally
            {
                c.Dispose();
            }
        }
    }

    public static class GuidanceTransportTests
    {
        static byte[] Vector(string file) { return File.ReadAllBytes(Path.Combine(VectorTests.Dir, file)); }

        static MsgMap WaitInput(FakeTransport t, ref int index)
        {
            while (true)
            {
                var m = (MsgMap)new MsgPackReader(t.WaitSent(index++)[0]).ReadObject();
                if ((string)m["type"] == "input") return m;
            }
        }

        // 1.3: an input's guidance goes out as its last key with the bytes given; one over max_message_bytes is
        // left out (the input still goes) with a client error saying why.
        public static void GuidanceGoesOutWithTheInput()
        {
            var t = new FakeTransport();
            var c = new WorldBridgeClient(new ClientOptions { Credits = 1, Hello = new HelloRequest { Width = 128, Height = 128 } }, t);
            c.Start();
            try
            {
                t.WaitSent(0); // hello
                t.Push(Vector("welcome_guidance.msgpack"));
                EdgeTests.WaitFor(() => c.IsConnected, 3000, "connected after the welcome");
                var offer = c.Welcome.Guidance;
                Check(offer != null && offer.Reads("depth"), "the welcome's offer");
                int gw, gh;
                offer.SizeAt(2, out gw, out gh);
                var colour = new byte[gw * gh * 3];
                for (int i = 0; i < colour.Length; i++) colour[i] = (byte)i;
                var g = new Guidance { Width = gw, Height = gh, RowOrder = RowOrder.BottomUp, Colour = colour,
                                       Depth = Guidance.EncodeDepth(new float[gw * gh], GuidanceDepthFormat.F16), DepthFormat = GuidanceDepthFormat.F16 };
                g.Validate(offer);
                c.SendInput(new InputState { MoveY = 1, HasPose = true, Pose = CameraPose.Identity }, g);
                int index = 1;
                var input = WaitInput(t, ref index);
                Equal("guidance", input.KeyAt(input.Count - 1), "guidance is the last key");
                var sent = (MsgMap)input["guidance"];
                Equal("width,height,row_order,colour,depth,depth_format", string.Join(",", sent.Select(kv => kv.Key)), "keys");
                Equal((long)gw, sent["width"], "width"); Equal("bottom_up", sent["row_order"], "row_order"); Equal("f16", sent["depth_format"], "depth_format");
                Bytes(colour, (byte[])sent["colour"], "colour bytes");
                Equal(gw * gh * 2, ((byte[])sent["depth"]).Length, "f16 depth bytes");
                EdgeTests.WaitFor(() => c.GuidanceSent == 1, 3000, "GuidanceSent counted");

                var huge = new Guidance { Width = 1024, Height = 1024, Colour = new byte[1024 * 1024 * 3], Depth = new byte[1024 * 1024 * 4] };
                c.SendInput(new InputState { MoveX = 1 }, huge);
                input = WaitInput(t, ref index);
                Check(!input.ContainsKey("guidance"), "an input over max_message_bytes goes without its guidance");
                Equal(1.0, ((List<object>)input["move"])[0], "the input itself still goes");
                EdgeTests.WaitFor(() => c.LastError != null && c.LastError.Name == "client_guidance", 3000, "client_guidance reported");
                Equal(1L, c.GuidanceSent, "GuidanceSent");
            }
            finally
            {
                c.Dispose();
            }
        }

        static Guidance Filled(GuidanceOffer offer, byte value)
        {
            int gw, gh;
            offer.SizeAt(2, out gw, out gh);
            var colour = new byte[gw * gh * 3];
            for (int i = 0; i < colour.Length; i++) colour[i] = value;
            return new Guidance { Width = gw, Height = gh, RowOrder = RowOrder.BottomUp, Colour = colour,
                                  Depth = Guidance.EncodeDepth(new float[gw * gh], GuidanceDepthFormat.F16), DepthFormat = GuidanceDepthFormat.F16 };
        }

        // 1.3 + 1.1: a recorded input goes out as one message with its image (second frame), its pose and its own
        // guidance, rendered together (WorldModelView's CaptureNow + GrabCamera); an older guidance of a plain
        // input still pending never takes its place, whether that plain input was merged into it or went first.
        public static void RecordedInputKeepsItsOwnGuidance()
        {
            var t = new FakeTransport();
            var c = new WorldBridgeClient(new ClientOptions { Credits = 1, Hello = new HelloRequest { Width = 128, Height = 128 } }, t);
            c.Start();
            try
            {
                t.WaitSent(0); // hello
                t.Push(Vector("welcome_guidance.msgpack"));
                EdgeTests.WaitFor(() => c.IsConnected, 3000, "connected after the welcome");
                c.StartRecording("level");
                t.Push(Vector("record_ok.msgpack"));
                EdgeTests.WaitFor(() => c.IsRecording, 3000, "recording after record_ok");
                var offer = c.Welcome.Guidance;
                var older = Filled(offer, 1);
                var own = Filled(offer, 2);
                var pose = new CameraPose(1.5, 0.5, -2, 0, 0.38268343236508978, 0, 0.92387953251128674);
                c.SendInput(new InputState { LookYaw = 1, HasPose = true, Pose = CameraPose.Identity }, older);
                var pixels = new byte[128 * 128 * 3];
                for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7);
                var spec = new ImageSpec { Width = 128, Height = 128, Format = PixelFormat.Rgb8, RowOrder = RowOrder.BottomUp };
                Check(c.SendRecordedInput(new InputState { LookYaw = 2, HasPose = true, Pose = pose, Guidance = own }, spec, pixels, pixels.Length),
                      "the recorded frame is queued");
                byte[][] recorded = null;
                for (int i = 1; recorded == null; i++)
                {
                    var message = t.WaitSent(i);
                    var m = (MsgMap)new MsgPackReader(message[0]).ReadObject();
                    if ((string)m["type"] == "input" && m.ContainsKey("image")) recorded = message;
                }
                var input = (MsgMap)new MsgPackReader(recorded[0]).ReadObject();
                Equal(2, recorded.Length, "the image is the message's second frame");
                Bytes(pixels, recorded[1], "the recorded image");
                var p = (List<object>)((MsgMap)input["pose"])["p"];
                Equal(1.5, p[0], "the recorded input's own pose");
                Equal("guidance", input.KeyAt(input.Count - 1), "guidance is the last key");
                Bytes(own.Colour, (byte[])((MsgMap)input["guidance"])["colour"], "the recorded input's own guidance, not the older one");
            }
            finally
            {
                c.Dispose();
            }
        }
    }

    /// <summary>An ITransport in memory: Push queues messages from the "daemon", Sent records what the client sent.</summary>
    sealed class FakeTransport : ITransport
    {
        readonly object _lock = new object();
        readonly Queue<byte[][]> _incoming = new Queue<byte[][]>();
        readonly List<byte[][]> _sent = new List<byte[][]>();
        long _bytes;
        bool _open;
        int _connects, _closes;

        public int Connects { get { lock (_lock) return _connects; } }
        public int Closes { get { lock (_lock) return _closes; } }
        public bool IsOpen { get { lock (_lock) return _open; } }

        public void Push(params byte[][] frames)
        {
            lock (_lock)
            {
                _incoming.Enqueue(frames.Select(f => (byte[])f.Clone()).ToArray());
                Monitor.PulseAll(_lock);
            }
        }

        /// <summary>The i-th message the client sent (its frames), waiting up to 3 s for it.</summary>
        public byte[][] WaitSent(int i)
        {
            var deadline = DateTime.UtcNow.AddSeconds(3);
            lock (_lock)
            {
                while (_sent.Count <= i)
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) throw new TestFailure("the client sent " + _sent.Count + " messages, waited for " + (i + 1));
                    Monitor.Wait(_lock, left);
                }
                return _sent[i];
            }
        }

        public void Connect(ClientOptions options, WaitHandle cancel)
        {
            lock (_lock) { _connects++; _open = true; }
        }

        public bool Poll(int microseconds)
        {
            lock (_lock)
            {
                if (_incoming.Count == 0 && _open && microseconds > 0) Monitor.Wait(_lock, TimeSpan.FromTicks(microseconds * 10L));
                return _incoming.Count > 0 || !_open;
            }
        }

        public void Send(byte[] frame0, int len0, byte[] frame1, int off1, int len1)
        {
            var f0 = new byte[len0];
            Buffer.BlockCopy(frame0, 0, f0, 0, len0);
            byte[][] message = { f0 };
            if (frame1 != null)
            {
                var f1 = new byte[len1];
                Buffer.BlockCopy(frame1, off1, f1, 0, len1);
                message = new[] { f0, f1 };
            }
            lock (_lock)
            {
                if (!_open) throw new IOException("send on a closed fake transport");
                _sent.Add(message);
                Monitor.PulseAll(_lock);
            }
        }

        public bool Receive(ZmtpMessage message)
        {
            lock (_lock)
            {
                if (!_open) throw new EndOfStreamException("fake transport closed");
                message.Count = 0;
                if (_incoming.Count == 0) return false;
                var frames = _incoming.Dequeue();
                for (int i = 0; i < frames.Length; i++)
                {
                    message.Frames[i] = frames[i];
                    message.Lengths[i] = frames[i].Length;
                    _bytes += frames[i].Length;
                }
                message.Count = frames.Length;
                return true;
            }
        }

        public long BytesReceived { get { lock (_lock) return _bytes; } }
        public long PingsAnswered { get { return 0; } }

        public void Close()
        {
            lock (_lock)
            {
                _closes++;
                _open = false;
                Monitor.PulseAll(_lock);
            }
        }
    }
}
