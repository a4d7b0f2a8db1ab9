// Against a real daemon (`worldbridge serve --world maze`): handshake, 100+ frames with inputs, errors that
// leave the session streaming, reset and ping, prompts (1.2: taken, a too-long one refused), guidance (1.3: taken,
// a wrong-size depth refused), reconnect after the daemon is killed and restarted on the same
// port (the caller does that when this prints "ACTION kill" / "ACTION start"), and a clean stop.
using System;
using System.Threading;
using WorldBridge.Core;
using static WorldBridge.CoreTests.EdgeTests;
using static WorldBridge.CoreTests.Program;

namespace WorldBridge.CoreTests
{
    public static class LiveTests
    {
        public static string Address;
        static WorldBridgeClient _c;
        static readonly FrameHeader _h = new FrameHeader();
        static byte[] _px;

        public static void Handshake()
        {
            _c = new WorldBridgeClient(new ClientOptions
            {
                Address = Address, Credits = 2, PaceToConsumer = true, ReconnectMinDelayS = 0.1, ReconnectMaxDelayS = 0.5,
                Hello = new HelloRequest { Width = 96, Height = 64, Format = PixelFormat.Rgb8, RowOrder = RowOrder.BottomUp, Capabilities = new[] { "pose" } },
                Prompt = "a hedge maze at noon, \u00e9t\u00e9", // 1.2: the maze has no "prompt" capability and ignores it
                Log = s => Console.WriteLine("  client: " + s),
            });
            _c.Start();
            WaitFor(() => _c.IsConnected, 20000, "welcome from " + Address + " (last: " + _c.LastDisconnectReason + ")");
            var w = _c.Welcome;
            Equal("maze", w.World, "world");
            Check(w.Width > 0 && w.Height > 0, "frame size " + w.Width + "x" + w.Height);
            Equal(PixelFormat.Rgb8, w.Format, "format");
            Equal(RowOrder.BottomUp, w.RowOrder, "row order");
            Equal(1, w.Major, "major");
            Equal(Protocol.Minor, w.Minor, "minor (1.3)");
            Check(!w.Has("prompt"), "the maze does not take prompts");
            Check(w.Session.Length > 0, "session id");
            Check(w.Limits.MaxCredits >= 2, "max_credits");
            Console.WriteLine("  welcome: session {0}, {1}x{2}, fov {3}, capabilities [{4}]", w.Session, w.Width, w.Height, w.FovDeg, string.Join(", ", w.Capabilities));
        }

        /// <summary>Send inputs while taking frames until `frames` more arrived; returns frames taken.</summary>
        static int Stream(int frames, int timeoutMs, Action<FrameHeader> onFrame = null)
        {
            long start = _c.FramesReceived;
            int taken = 0, length;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (_c.FramesReceived - start < frames)
            {
                if (sw.ElapsedMilliseconds > timeoutMs)
                    throw new TestFailure("only " + (_c.FramesReceived - start) + " of " + frames + " frames in " + timeoutMs + " ms (state " + _c.State + ", last error " + _c.LastError + ")");
                _c.SendInput(new InputState { MoveY = 1, MoveX = 0.2, LookYaw = 0.5, Buttons = InputState.ButtonRun });
                if (_c.TryTakeFrame(_h, ref _px, out length))
                {
                    taken++;
                    Equal(_h.ExpectedPayloadBytes, length, "pixel bytes");
                    Equal(length, _px.Length, "raw frames come in exact-size arrays");
                    if (onFrame != null) onFrame(_h);
                }
                Thread.Sleep(2);
            }
            return taken;
        }

        public static void Streams100FramesWithInputs()
        {
            var w = _c.Welcome;
            CameraPose first = default(CameraPose), last = default(CameraPose);
            long maxInputSeq = -1;
            int n = 0;
            bool varied = false;
            int taken = Stream(110, 30000, h =>
            {
                Equal(w.Width, h.Width, "frame width"); Equal(w.Height, h.Height, "frame height");
                Equal(RowOrder.BottomUp, h.RowOrder, "frame row order");
                if (n++ == 0) first = h.Pose;
                last = h.Pose;
                maxInputSeq = Math.Max(maxInputSeq, h.InputSeq);
                double qn = Math.Sqrt(h.Pose.Qx * h.Pose.Qx + h.Pose.Qy * h.Pose.Qy + h.Pose.Qz * h.Pose.Qz + h.Pose.Qw * h.Pose.Qw);
                Check(Math.Abs(qn - 1) < 1e-6, "frame pose quaternion is unit length: " + qn);
                for (int i = 1; i < _px.Length && !varied; i++) varied = _px[i] != _px[0];
            });
            Check(taken >= 10, "took " + taken + " frames");
            Check(varied, "frames have more than one pixel value");
            Check(maxInputSeq > 0, "frames answer inputs (input_seq " + maxInputSeq + ")");
            Check(first.ToString() != last.ToString(), "the camera moved with the inputs: " + first + " -> " + last);
            double lat = _c.LatencyMs;
            Check(!double.IsNaN(lat) && lat >= 0 && lat < 10000, "input-to-frame latency " + lat + " ms");
            Check(_c.Fps > 0, "fps " + _c.Fps);
            Check(_c.InputsSent > 0, "inputs sent");
            Console.WriteLine("  {0} frames received, {1} taken, {2} dropped; {3:0.0} fps; latency {4:0.0} ms (avg {5:0.0}); {6} inputs sent",
                _c.FramesReceived, taken, _c.FramesDropped, _c.Fps, lat, _c.LatencyAvgMs, _c.InputsSent);
        }

        static ClientEvent WaitEvent(ClientEventKind kind, int ms, Func<ClientEvent, bool> match = null)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            int length;
            while (sw.ElapsedMilliseconds < ms)
            {
                ClientEvent e;
                while (_c.TryDequeueEvent(out e))
                    if (e.Kind == kind && (match == null || match(e))) return e;
                _c.TryTakeFrame(_h, ref _px, out length);
                Thread.Sleep(5);
            }
            throw new TestFailure("no " + kind + " event within " + ms + " ms (last error " + _c.LastError + ")");
        }

        static void DrainEvents() { ClientEvent e; while (_c.TryDequeueEvent(out e)) { } }

        public static void ErrorsLeaveTheSessionStreaming()
        {
            DrainEvents();
            long sessions = _c.Sessions;
            var w = new MsgPackWriter();
            Protocol.WriteCredit(w, 0);                      // n must be >= 1
            _c.SendRaw(w.ToArray());
            var e = WaitEvent(ClientEventKind.Error, 5000).Error;
            Equal(422, e.Code, "code for credit n=0"); Equal("bad_field", e.Name, "name"); Equal("credit", e.Ref, "ref");
            Check(e.Message.Length > 0, "message");

            w.Clear();
            w.WriteMapHeader(1); w.WriteString("type"); w.WriteString("teleport");
            _c.SendRaw(w.ToArray());
            e = WaitEvent(ClientEventKind.Error, 5000).Error;
            Equal(404, e.Code, "code for an unknown type"); Equal("unknown_type", e.Name, "name");
            Equal(404, _c.LastError.Code, "LastError");

            Stream(20, 10000);
            Equal(sessions, _c.Sessions, "same session after the errors");
            Equal(ClientState.Connected, _c.State, "state");
        }

        public static void ResetAndPing()
        {
            DrainEvents();
            _c.Reset(7);
            var ok = WaitEvent(ClientEventKind.ResetOk, 5000).ResetOk;
            Equal(7L, ok.Seed, "reset_ok seed");
            Check(ok.Episode >= 1, "episode " + ok.Episode);
            bool seen = false;
            Stream(20, 10000, h => { if (h.Episode == ok.Episode) seen = true; });
            Check(seen, "frames of the new episode");
            _c.Ping();
            var pong = WaitEvent(ClientEventKind.Pong, 5000);
            Check(pong.RoundTripMs >= 0 && pong.RoundTripMs < 5000, "round trip " + pong.RoundTripMs);
            Check(pong.Pong.ServerTime > 1.6e9, "server_time is Unix time");
        }

        public static void PromptsAreTakenAndATooLongOneIsRefused()
        {
            // 1.2: a reset's prompt is accepted (the maze ignores it: it has no "prompt" capability), a too-long
            // one is a 422 naming "prompt" that leaves the session and its episode as they were.
            DrainEvents();
            long sessions = _c.Sessions;
            Equal("a hedge maze at noon, \u00e9t\u00e9", _c.Prompt, "the hello's prompt");
            _c.Reset(8, null, "a foggy harbour at dawn \U0001f6a2");
            var ok = WaitEvent(ClientEventKind.ResetOk, 5000).ResetOk;
            Equal(8L, ok.Seed, "reset_ok seed");
            Equal("a foggy harbour at dawn \U0001f6a2", _c.Prompt, "a reconnect's hello will send the reset's prompt");
            bool seen = false;
            Stream(10, 10000, h => { if (h.Episode == ok.Episode) seen = true; });
            Check(seen, "frames of the prompted episode");

            _c.Reset(9, null, new string('\u00e9', Protocol.MaxPromptBytes / 2 + 1)); // 2002 bytes as UTF-8
            var e = WaitEvent(ClientEventKind.Error, 5000).Error;
            Equal(422, e.Code, "code for a too-long prompt"); Equal("bad_field", e.Name, "name"); Equal("reset", e.Ref, "ref");
            Check(e.Message.StartsWith("\"prompt\"", StringComparison.Ordinal), "the error names the field: " + e.Message);
            Equal("a foggy harbour at dawn \U0001f6a2", _c.Prompt, "a refused prompt is not kept");
            bool sameEpisode = true;
            Stream(10, 10000, h => { if (h.Episode != ok.Episode) sameEpisode = false; });
            Check(sameEpisode, "the refused reset started no episode");

            var w = new MsgPackWriter();
            w.WriteMapHeader(3); w.WriteString("type"); w.WriteString("reset"); w.WriteString("seed"); w.WriteInt(1);
            w.WriteString("prompt"); w.WriteInt(5);
            _c.SendRaw(w.ToArray());
            e = WaitEvent(ClientEventKind.Error, 5000).Error;
            Equal(422, e.Code, "code for a prompt that is not a string");
            Check(e.Message.StartsWith("\"prompt\"", StringComparison.Ordinal), "the error names the field: " + e.Message);
            Stream(10, 10000);
            Equal(sessions, _c.Sessions, "same session after the refused prompts");
            Equal(ClientState.Connected, _c.State, "state");
        }

        // A guidance of the size the world takes (any size within the limits for a world without the capability).
        static Guidance LiveGuidance(int seed, bool wrongDepth = false)
        {
            var offer = _c.Welcome.Guidance;
            int w = 32, h = 24;
            if (offer != null) offer.SizeAt(offer.NearestScale(2), out w, out h);
            var colour = new byte[w * h * 3];
            var depth = new float[w * h];
            var ids = new ushort[w * h];
            for (int i = 0; i < w * h; i++)
            {
                colour[3 * i] = (byte)(i + seed); colour[3 * i + 1] = (byte)(i >> 3); colour[3 * i + 2] = 200;
                depth[i] = i % 7 == 0 ? 0f : i % 11 == 0 ? float.PositiveInfinity : 0.25f + (i % w) * 0.1f;
                ids[i] = (ushort)(i % 5);
            }
            var g = new Guidance
            {
                Width = w, Height = h, RowOrder = RowOrder.BottomUp, Colour = colour,
                Depth = Guidance.EncodeDepth(depth, GuidanceDepthFormat.F16), DepthFormat = GuidanceDepthFormat.F16, Ids = Guidance.EncodeIds(ids),
            };
            if (wrongDepth) g.Depth = Guidance.EncodeDepth(new float[w * h - 1], GuidanceDepthFormat.F16); // a pixel short
            return g;
        }

        public static void GuidanceIsTakenAndAWrongSizeIsRefused()
        {
            // 1.3: inputs with guidance (and the pose it belongs to) keep the frames coming with no error; a depth
            // buffer of the wrong byte count is a 422 naming "guidance.depth" (ref "input") and the session goes on.
            DrainEvents();
            long sessions = _c.Sessions, sent = _c.GuidanceSent;
            var pose = new CameraPose(1.5, 0.5, 1.5, 0, 0, 0, 1);
            int n = 0;
            _c.SendInput(new InputState { MoveY = 1, HasPose = true, Pose = pose, FovDeg = 60 }, LiveGuidance(0));
            Stream(15, 10000, h => _c.SendInput(new InputState { MoveY = 1, HasPose = true, Pose = pose, FovDeg = 60 }, LiveGuidance(++n)));
            ClientEvent e;
            while (_c.TryDequeueEvent(out e))
                if (e.Kind == ClientEventKind.Error) throw new TestFailure("an input with valid guidance was refused: " + e.Error);
            Check(_c.GuidanceSent > sent, "inputs with guidance sent: " + (_c.GuidanceSent - sent));

            var bad = LiveGuidance(0, wrongDepth: true);
            Throws<ArgumentException>(() => _c.SendInput(new InputState(), bad), "SendInput checks the byte count locally");
            var w = new MsgPackWriter();
            var input = new InputState { MoveY = 1, HasPose = true, Pose = pose, Guidance = bad };
            Protocol.WriteInput(w, 1 << 30, WorldBridgeClient.Now, ref input); // past the local check, as a buggy client would
            _c.SendRaw(w.ToArray());
            var err = WaitEvent(ClientEventKind.Error, 5000).Error;
            Equal(422, err.Code, "code for a wrong-size depth"); Equal("bad_field", err.Name, "name"); Equal("input", err.Ref, "ref");
            Check(err.Message.StartsWith("\"guidance.depth\"", StringComparison.Ordinal), "the error names guidance.depth: " + err.Message);
            Check(err.Message.Contains(((bad.Width * bad.Height) * 2).ToString()), "the error gives the expected byte count: " + err.Message);
            Stream(10, 10000);
            Equal(sessions, _c.Sessions, "same session after the refused guidance");
            Equal(ClientState.Connected, _c.State, "state");
        }

        public static void PacingHoldsFramesUntilTaken()
        {
            // PaceToConsumer with 2 credits: 2 frames arrive, then nothing until one is taken; then 2 more.
            using (var paced = new WorldBridgeClient(new ClientOptions
            {
                Address = Address, Credits = 2, PaceToConsumer = true,
                Hello = new HelloRequest { Width = 32, Height = 32, Format = PixelFormat.Rgba8 },
            }))
            {
                paced.Start();
                WaitFor(() => paced.FramesReceived >= 2, 10000, "two paced frames");
                Thread.Sleep(300);
                Equal(2L, paced.FramesReceived, "frames while nobody takes them");
                Equal(1L, paced.FramesDropped, "the newer frame replaced the older one");
                var h = new FrameHeader();
                byte[] px = null;
                int length;
                Check(paced.TryTakeFrame(h, ref px, out length), "take");
                Equal(1L, h.Seq, "the newest frame is taken");
                Equal(32 * 32 * 4, length, "rgba8 bytes");
                for (int i = 3; i < length; i += 4) if (px[i] != 255) throw new TestFailure("alpha must be 255");
                WaitFor(() => paced.FramesReceived >= 4, 5000, "two more frames after taking");
                Thread.Sleep(200);
                Equal(4L, paced.FramesReceived, "again no more than 2 per take");
            }
        }

        public static void AnswersTheDaemonsHeartbeat()
        {
            // libzmq PINGs every 10 s (docs/protocol.md section 1); the client thread answers with PONG and the
            // session goes on. No frame is taken meanwhile, so the paced client leaves the daemon idle.
            long sessions = _c.Sessions;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (_c.PingsAnswered < 1)
            {
                if (sw.ElapsedMilliseconds > 15000) throw new TestFailure("no ZMTP PING from the daemon within 15 s");
                _c.SendInput(new InputState { LookYaw = 0.1 });
                Thread.Sleep(20);
            }
            Stream(10, 10000);
            Equal(sessions, _c.Sessions, "same session after the heartbeat");
            Console.WriteLine("  answered {0} ZMTP PING(s) after waiting {1} ms", _c.PingsAnswered, sw.ElapsedMilliseconds);
        }

        static void Ask(string action)
        {
            Console.WriteLine("ACTION " + action);
            Console.Out.Flush();
            string answer = Console.ReadLine();
            if (answer == null || !answer.StartsWith("ok")) throw new TestFailure("ACTION " + action + ": " + (answer ?? "no answer"));
        }

        public static void ReconnectsAfterTheDaemonIsKilledAndRestarted()
        {
            long sessions = _c.Sessions;
            string oldSession = _c.Welcome.Session;
            Ask("kill");
            WaitFor(() => !_c.IsConnected, 10000, "the client noticing the daemon died");
            Check(_c.IsAlive, "client thread keeps running to reconnect");
            Console.WriteLine("  disconnected: " + _c.LastDisconnectReason + "; state " + _c.State);
            Ask("start");
            WaitFor(() => _c.IsConnected && _c.Sessions == sessions + 1, 20000, "reconnect (state " + _c.State + ", last " + _c.LastDisconnectReason + ")");
            Check(_c.Welcome.Session != oldSession, "a new session");
            Stream(20, 15000);
            Console.WriteLine("  reconnected: session {0}, {1} frames so far", _c.Welcome.Session, _c.FramesReceived);
        }

        public static void StopJoinsTheThread()
        {
            var thread = _c.Thread;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            _c.Dispose();
            Check(sw.ElapsedMilliseconds < 3000, "Dispose took " + sw.ElapsedMilliseconds + " ms");
            Check(!thread.IsAlive, "client thread still alive");
            Check(!_c.IsAlive, "IsAlive after Dispose");
            Equal(ClientState.Stopped, _c.State, "state");
            Equal(0, WorldBridgeClient.RunningCount, "clients still registered as running");
            Console.WriteLine("  stopped in {0} ms; ZMTP PINGs answered: {1}", sw.ElapsedMilliseconds, _c.PingsAnswered);
        }

        internal static void Cleanup()
        {
            if (_c != null) _c.Dispose();
        }
    }
}
