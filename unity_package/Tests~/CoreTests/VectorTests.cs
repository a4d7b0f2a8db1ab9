// tests/vectors: every message decodes to its documented meaning, every client message the C# writes equals
// the vector bytes, msgpack_values round-trips exactly, the ZMTP vectors are produced and parsed exactly.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using WorldBridge.Core;
using static WorldBridge.CoreTests.Program;

namespace WorldBridge.CoreTests
{
    public static class VectorTests
    {
        public static string Dir;

        static List<object> _index;
        static List<object> Index
        {
            get { return _index ?? (_index = (List<object>)Json.Parse(File.ReadAllText(Path.Combine(Dir, "index.json")))); }
        }

        static IEnumerable<MsgMap> Vectors(string kind)
        {
            return Index.Cast<MsgMap>().Where(v => (string)v["kind"] == kind);
        }

        static byte[] Read(string file) { return File.ReadAllBytes(Path.Combine(Dir, file)); }
        static MsgMap Vector(string name) { return Index.Cast<MsgMap>().First(v => (string)v["name"] == name); }
        static string FirstFile(MsgMap v) { return (string)((List<object>)v["files"])[0]; }

        public static void IndexCoversEveryKind()
        {
            Check(Vectors("message").Count() >= 24, "index.json lists the protocol messages");
            Check(Vectors("values").Count() == 1, "index.json lists msgpack_values");
            Check(Vectors("zmtp").Count() >= 9, "index.json lists the ZMTP vectors");
        }

        public static void EveryMessageDecodesToItsMeaning()
        {
            foreach (var v in Vectors("message"))
            {
                var data = Read(FirstFile(v));
                var reader = new MsgPackReader(data);
                var decoded = reader.ReadObject();
                Check(reader.AtEnd, v["name"] + ": trailing bytes");
                SameTree(v["meaning"], decoded, (string)v["name"]);
            }
        }

        public static void EveryClientMessageIsWrittenByteForByte()
        {
            int n = 0;
            foreach (var v in Vectors("message").Where(v => (string)v["direction"] == "c2d"))
            {
                var expected = Read(FirstFile(v));
                var w = new MsgPackWriter(16); // small on purpose: growth must not change bytes
                WriteFromMeaning(w, (MsgMap)v["meaning"]);
                Bytes(expected, w.Buffer, w.Length, (string)v["name"]);
                n++;
            }
            Check(n >= 14, "expected at least 14 client->daemon vectors, found " + n);
        }

        // 1.2: the prompt vectors exist, carry what the protocol says, and the writers make them from typed values
        // (not only from the vectors' own meaning): a non-ASCII prompt over 31 bytes as a str8, last in hello and reset.
        public static void PromptVectorsAreWrittenExactly()
        {
            const string prompt = "A sunlit caf\u00e9 terrace in Lyon, \u20ac3 espresso, a dog asleep \U0001f415";
            Equal(64, Encoding.UTF8.GetByteCount(prompt), "prompt bytes");
            Equal(3, Protocol.Minor, "protocol minor");
            var hello = Vector("hello_prompt");
            var meaning = (MsgMap)hello["meaning"];
            Equal(prompt, meaning["prompt"], "hello_prompt's prompt");
            Equal("prompt", meaning.KeyAt(meaning.Count - 1), "prompt is hello's last key");
            var w = new MsgPackWriter(16);
            Protocol.WriteHello(w, new HelloRequest
            {
                Client = "unity/0.1.0", Engine = "unity", Width = 256, Height = 256, Credits = 2,
                Capabilities = new[] { "pose" }, Prompt = prompt,
            });
            Bytes(Read("hello_prompt.msgpack"), w.Buffer, w.Length, "hello with a prompt");

            w.Clear();
            var pose = new CameraPose(1.5, 0.5, -2.0, 0.0, 0.3826834323650898, 0.0, 0.9238795325112867);
            Protocol.WriteReset(w, 3, pose, null, "a snowy pine forest at dusk");
            Bytes(Read("reset_prompt.msgpack"), w.Buffer, w.Length, "reset with a prompt");
            w.Clear();
            Protocol.WriteReset(w, 42, pose, null, "");
            Bytes(Read("reset.msgpack"), w.Buffer, w.Length, "an empty prompt is not sent");
            w.Clear();
            Protocol.WriteHello(w, new HelloRequest { Client = "unity/0.1.0", Engine = "unity", Width = 128, Height = 128, Credits = 2, Prompt = null });
            Bytes(Read("hello.msgpack"), w.Buffer, w.Length, "a null prompt is not sent");

            var data = Read("error_prompt.msgpack");
            Equal(MessageKind.Error, Protocol.ReadKind(new MsgPackReader(), data, data.Length), "error_prompt kind");
            var e = Protocol.ReadError(data, data.Length);
            Equal(422, e.Code, "error_prompt code"); Equal("reset", e.Ref, "error_prompt ref");
            Check(e.Message.StartsWith("\"prompt\"", StringComparison.Ordinal), "error_prompt names the field: " + e.Message);
            Check(e.Message.Contains(Protocol.MaxPromptBytes.ToString()), "error_prompt states the limit");

            var welcome = Read("welcome.msgpack");
            Check(Protocol.ReadWelcome(welcome, welcome.Length).Has("prompt"), "welcome lists the prompt capability");
        }

        // 1.3: the guidance vectors, made by the writers from typed values: a 4x2 guidance (top row first as
        // generate.py has it) flipped to bottom_up as a Unity readback is, depth encoded as f16 by the C# helper.
        public static void GuidanceVectorsAreWrittenExactly()
        {
            var v = Vector("input_guidance");
            var meaning = (MsgMap)v["meaning"];
            Equal("guidance", meaning.KeyAt(meaning.Count - 1), "guidance is the input's last key");
            var gm = (MsgMap)meaning["guidance"];
            Equal("width,height,row_order,colour,depth,depth_format,ids", string.Join(",", gm.Select(kv => kv.Key)), "guidance keys in the order of section 4c");

            const int W = 4, H = 2;
            var colourTopDown = Enumerable.Range(0, W * H * 3).Select(i => (byte)(i * 10)).ToArray();
            var depthTopDown = new[] { 0.5f, 1f, 2.5f, float.PositiveInfinity, 4f, 8f, 0f, 1.25f };
            var idsTopDown = new ushort[] { 1, 2, 3, 65535, 0, 256, 7, 8 };
            Func<float[], float[]> flipF = a => Enumerable.Range(0, H).Reverse().SelectMany(r => a.Skip(r * W).Take(W)).ToArray();
            Func<ushort[], ushort[]> flipU = a => Enumerable.Range(0, H).Reverse().SelectMany(r => a.Skip(r * W).Take(W)).ToArray();
            var colour = Enumerable.Range(0, H).Reverse().SelectMany(r => colourTopDown.Skip(r * W * 3).Take(W * 3)).ToArray();
            var g = new Guidance
            {
                Width = W, Height = H, RowOrder = RowOrder.BottomUp, Colour = colour,
                Depth = Guidance.EncodeDepth(flipF(depthTopDown), GuidanceDepthFormat.F16), DepthFormat = GuidanceDepthFormat.F16,
                Ids = Guidance.EncodeIds(flipU(idsTopDown)),
            };
            g.Validate();
            var w = new MsgPackWriter(16);
            var input = new InputState
            {
                MoveY = 1, HasPose = true, FovDeg = 60,
                Pose = new CameraPose(1.5, 0.5, -2.0, 0.0, 0.3826834323650898, 0.0, 0.9238795325112867),
                Guidance = g,
            };
            Protocol.WriteInput(w, 9, 12.75, ref input);
            Bytes(Read("input_guidance.msgpack"), w.Buffer, w.Length, "input with guidance from typed values");
            Equal("0.5,1,2.5,Infinity,4,8,0,1.25", string.Join(",", flipF(Guidance.DecodeDepth(g.Depth, GuidanceDepthFormat.F16)).Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture))), "f16 depth decodes back");

            // without guidance the input is the one of 1.2, byte for byte
            w.Clear();
            input = new InputState { MoveY = 1, LookYaw = 1, HasPose = true, FovDeg = 60, Pose = input.Pose, HasImage = true,
                Image = new ImageSpec { Width = 4, Height = 2, Format = PixelFormat.Rgb8, RowOrder = RowOrder.TopDown } };
            Protocol.WriteInput(w, 8, 12.5, ref input);
            Bytes(Read("input_image.msgpack"), w.Buffer, w.Length, "input without guidance");

            var data = Read("welcome_guidance.msgpack");
            var welcome = Protocol.ReadWelcome(data, data.Length);
            Check(welcome.Has(Protocol.CapabilityGuidance), "welcome_guidance lists the capability");
            var offer = welcome.Guidance;
            Check(offer != null, "welcome_guidance has a guidance map");
            Equal("colour,depth", string.Join(",", offer.Buffers), "buffers");
            Equal(128, offer.Width, "width"); Equal(128, offer.Height, "height");
            Equal("1,2,4", string.Join(",", offer.Scales), "scales");
            Check(offer.Reads("colour") && offer.Reads("depth") && !offer.Reads("ids"), "Reads");
            Check(offer.Allows(128, 128) && offer.Allows(64, 64) && offer.Allows(32, 32), "listed sizes allowed");
            Check(!offer.Allows(96, 96) && !offer.Allows(64, 32) && !offer.Allows(16, 16), "other sizes refused");
            int sw, sh;
            offer.SizeAt(4, out sw, out sh);
            Equal("32x32", sw + "x" + sh, "size at scale 4");
            Equal(2, offer.NearestScale(2), "a listed scale is kept"); Equal(2, offer.NearestScale(3), "a tie takes the finer scale");
            Equal(4, offer.NearestScale(9), "the nearest listed scale"); Equal(1, offer.NearestScale(0), "nearest to 0");
            var plain = Read("welcome.msgpack");
            Check(Protocol.ReadWelcome(plain, plain.Length).Guidance == null, "a welcome without the map has no offer");

            data = Read("error_guidance.msgpack");
            var e = Protocol.ReadError(data, data.Length);
            Equal(422, e.Code, "error_guidance code"); Equal("input", e.Ref, "error_guidance ref");
            Check(e.Message.StartsWith("\"guidance.depth\"", StringComparison.Ordinal), "error_guidance names the field: " + e.Message);
        }

        // Build each message through the typed writers (what the client really uses), from the vector's values.
        static void WriteFromMeaning(MsgPackWriter w, MsgMap m)
        {
            switch ((string)m["type"])
            {
                case "hello":
                    Protocol.WriteHello(w, new HelloRequest
                    {
                        Client = (string)m["client"], Engine = (string)m["engine"],
                        Width = (int)(long)m["width"], Height = (int)(long)m["height"],
                        Format = Protocol.ParseFormat((string)m["format"]), RowOrder = Protocol.ParseRowOrder((string)m["row_order"]),
                        Credits = (int)(long)m["credits"], Capabilities = ((List<object>)m["capabilities"]).Cast<string>().ToArray(),
                        JpegQuality = (int)(long)m["jpeg_quality"], Seed = (long)m["seed"], Token = (string)m["token"] ?? "",
                        Prompt = (string)m["prompt"] ?? "",
                    });
                    break;
                case "input":
                {
                    var move = (List<object>)m["move"];
                    var look = (List<object>)m["look"];
                    var input = new InputState
                    {
                        MoveX = (double)move[0], MoveY = (double)move[1], LookYaw = (double)look[0], LookPitch = (double)look[1],
                        Buttons = (uint)(long)m["buttons"],
                    };
                    if (m.ContainsKey("pose")) { input.HasPose = true; input.Pose = PoseOf(m["pose"]); }
                    if (m.ContainsKey("fov_deg")) input.FovDeg = (double)m["fov_deg"];
                    if (m.ContainsKey("image")) { input.HasImage = true; input.Image = ImageOf(m["image"]); }
                    if (m.ContainsKey("guidance")) input.Guidance = GuidanceOf(m["guidance"]);
                    Protocol.WriteInput(w, (long)m["seq"], (double)m["t"], ref input);
                    break;
                }
                case "credit":
                    Protocol.WriteCredit(w, (int)(long)m["n"]);
                    break;
                case "reset":
                {
                    CameraPose? pose = null;
                    ImageSpec? image = null;
                    if (m.ContainsKey("pose")) pose = PoseOf(m["pose"]);
                    if (m.ContainsKey("image")) image = ImageOf(m["image"]);
                    Protocol.WriteReset(w, (long)m["seed"], pose, image, (string)m["prompt"]);
                    break;
                }
                case "ping":
                    Protocol.WritePing(w, (double)m["t"]);
                    break;
                case "bye":
                    Protocol.WriteBye(w);
                    break;
                case "record_start":
                    Protocol.WriteRecordStart(w, (string)m["name"] ?? "");
                    break;
                case "record_stop":
                    Protocol.WriteRecordStop(w);
                    break;
                default:
                    throw new TestFailure("no writer for client message " + m["type"]);
            }
        }

        static ImageSpec ImageOf(object o)
        {
            var im = (MsgMap)o;
            return new ImageSpec
            {
                Width = (int)(long)im["width"], Height = (int)(long)im["height"],
                Format = Protocol.ParseFormat((string)im["format"]), RowOrder = Protocol.ParseRowOrder((string)im["row_order"]),
            };
        }

        static Guidance GuidanceOf(object o)
        {
            var g = (MsgMap)o;
            return new Guidance
            {
                Width = (int)(long)g["width"], Height = (int)(long)g["height"],
                RowOrder = Protocol.ParseRowOrder((string)g["row_order"] ?? "top_down"),
                Colour = (byte[])FromMeaning(g["colour"]), Depth = (byte[])FromMeaning(g["depth"]), Ids = (byte[])FromMeaning(g["ids"]),
                DepthFormat = (string)g["depth_format"] == "f16" ? GuidanceDepthFormat.F16 : GuidanceDepthFormat.F32,
            };
        }

        static CameraPose PoseOf(object o)
        {
            var m = (MsgMap)o;
            var p = ((List<object>)m["p"]).Cast<double>().ToArray();
            var q = ((List<object>)m["q"]).Cast<double>().ToArray();
            return new CameraPose(p[0], p[1], p[2], q[0], q[1], q[2], q[3]);
        }

        public static void DaemonMessagesDecodeToTypedMessages()
        {
            var reader = new MsgPackReader();
            foreach (var v in Vectors("message").Where(v => (string)v["direction"] == "d2c"))
            {
                var data = Read(FirstFile(v));
                var m = (MsgMap)v["meaning"];
                string name = (string)v["name"];
                var kind = Protocol.ReadKind(reader, data, data.Length);
                switch ((string)m["type"])
                {
                    case "welcome":
                    {
                        Equal(MessageKind.Welcome, kind, name);
                        var w = Protocol.ReadWelcome(data, data.Length);
                        Equal((long)m["major"], (long)w.Major, "major"); Equal((long)m["minor"], (long)w.Minor, "minor");
                        Equal(m["session"], w.Session, "session"); Equal(m["world"], w.World, "world");
                        Equal((long)m["width"], (long)w.Width, "width"); Equal((long)m["height"], (long)w.Height, "height");
                        Equal(m["format"], Protocol.Name(w.Format), "format"); Equal(m["row_order"], Protocol.Name(w.RowOrder), "row_order");
                        Equal((long)m["jpeg_quality"], (long)w.JpegQuality, "jpeg_quality"); Equal(m["fov_deg"], w.FovDeg, "fov_deg");
                        Equal(string.Join(",", ((List<object>)m["capabilities"]).Cast<string>()), string.Join(",", w.Capabilities), "capabilities");
                        var lim = (MsgMap)m["limits"];
                        Equal(lim["max_message_bytes"], w.Limits.MaxMessageBytes, "max_message_bytes");
                        Equal((long)lim["max_sessions"], (long)w.Limits.MaxSessions, "max_sessions");
                        Equal(lim["idle_timeout_s"], w.Limits.IdleTimeoutS, "idle_timeout_s");
                        Equal((long)lim["max_credits"], (long)w.Limits.MaxCredits, "max_credits");
                        Equal((long)lim["max_width"], (long)w.Limits.MaxWidth, "max_width");
                        Equal((long)lim["max_height"], (long)w.Limits.MaxHeight, "max_height");
                        var gm = m["guidance"] as MsgMap;
                        Equal(gm != null, w.Guidance != null, name + ": guidance map parsed iff present");
                        if (gm != null)
                        {
                            Equal(string.Join(",", ((List<object>)gm["buffers"]).Cast<string>()), string.Join(",", w.Guidance.Buffers), "guidance.buffers");
                            Equal((long)gm["width"], (long)w.Guidance.Width, "guidance.width");
                            Equal((long)gm["height"], (long)w.Guidance.Height, "guidance.height");
                            Equal(string.Join(",", ((List<object>)gm["scales"]).Cast<long>()), string.Join(",", w.Guidance.Scales), "guidance.scales");
                        }
                        break;
                    }
                    case "frame":
                    {
                        Equal(MessageKind.Frame, kind, name);
                        var h = new FrameHeader();
                        Protocol.ReadFrame(reader, data, data.Length, h);
                        Equal(m["seq"], h.Seq, "seq"); Equal(m["input_seq"], h.InputSeq, "input_seq");
                        Equal(m["input_t"], h.InputT, "input_t"); Equal(m["episode"], h.Episode, "episode");
                        Equal((long)m["width"], (long)h.Width, "width"); Equal((long)m["height"], (long)h.Height, "height");
                        Equal(m["format"], Protocol.Name(h.Format), "format"); Equal(m["row_order"], Protocol.Name(h.RowOrder), "row_order");
                        var pose = PoseOf(m["pose"]);
                        Equal(pose.ToString(), h.Pose.ToString(), "pose");
                        var t = (MsgMap)m["timings"];
                        Equal(t["queue_ms"], h.QueueMs, "queue_ms"); Equal(t["step_ms"], h.StepMs, "step_ms"); Equal(t["encode_ms"], h.EncodeMs, "encode_ms");
                        var files = (List<object>)v["files"];
                        Equal(2, files.Count, "frame has a pixel frame");
                        Equal(h.ExpectedPayloadBytes, Read((string)files[1]).Length, "pixel bytes = width*height*3");
                        break;
                    }
                    case "reset_ok":
                    {
                        Equal(MessageKind.ResetOk, kind, name);
                        var r = Protocol.ReadResetOk(data, data.Length);
                        Equal(m["episode"], r.Episode, "episode"); Equal(m["seed"], r.Seed, "seed");
                        break;
                    }
                    case "pong":
                    {
                        Equal(MessageKind.Pong, kind, name);
                        var p = Protocol.ReadPong(data, data.Length);
                        Equal(m["t"], p.T, "t"); Equal(m["server_time"], p.ServerTime, "server_time");
                        break;
                    }
                    case "error":
                    {
                        Equal(MessageKind.Error, kind, name);
                        var e = Protocol.ReadError(data, data.Length);
                        Equal((long)m["code"], (long)e.Code, "code"); Equal(m["name"], e.Name, "name");
                        Equal(m["message"], e.Message, "message"); Equal(m["ref"], e.Ref, "ref");
                        break;
                    }
                    case "bye":
                        Equal(MessageKind.Bye, kind, name);
                        break;
                    case "record_ok":
                    {
                        Equal(MessageKind.RecordOk, kind, name);
                        var r = Protocol.ReadRecordOk(data, data.Length);
                        Equal(m["name"], r.Name, "name");
                        Equal((long)m["width"], (long)r.Width, "width"); Equal((long)m["height"], (long)r.Height, "height");
                        Equal(m["max_frames"], r.MaxFrames, "max_frames"); Equal(m["max_bytes"], r.MaxBytes, "max_bytes");
                        break;
                    }
                    case "record_done":
                    {
                        Equal(MessageKind.RecordDone, kind, name);
                        var r = Protocol.ReadRecordDone(data, data.Length);
                        Equal(m["name"], r.Name, "name"); Equal(m["path"], r.Path, "path");
                        Equal(m["frames"], r.Frames, "frames"); Equal(m["episodes"], r.Episodes, "episodes");
                        break;
                    }
                    default:
                        throw new TestFailure("unexpected daemon message " + m["type"]);
                }
            }
        }

        public static void MsgpackValuesRoundTripExactly()
        {
            var v = Vectors("values").Single();
            var data = Read(FirstFile(v));
            var reader = new MsgPackReader(data);
            var decoded = reader.ReadObject();
            Check(reader.AtEnd, "trailing bytes");
            SameTree(v["meaning"], decoded, "msgpack_values");
            var w = new MsgPackWriter(8);
            w.WriteObject(decoded);
            Bytes(data, w.Buffer, w.Length, "msgpack_values re-encoded");
            // and from the JSON meaning (bins turned into byte[]): the writer alone makes the same bytes
            w.Clear();
            w.WriteObject(FromMeaning(v["meaning"]));
            Bytes(data, w.Buffer, w.Length, "msgpack_values written from index.json");
        }

        static object FromMeaning(object o)
        {
            var m = o as MsgMap;
            if (m != null && m.Count == 1 && m.KeyAt(0) == "$bin")
            {
                var hex = (string)m.ValueAt(0);
                var b = new byte[hex.Length / 2];
                for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
                return b;
            }
            if (m != null)
            {
                var r = new MsgMap();
                foreach (var kv in m) r.Set(kv.Key, FromMeaning(kv.Value));
                return r;
            }
            var l = o as List<object>;
            if (l != null) return l.Select(FromMeaning).ToList();
            return o;
        }

        public static void ZmtpCommandsAreProducedExactly()
        {
            Bytes(Read("zmtp_greeting.bin"), Zmtp.Greeting(), "greeting");
            Bytes(Read("zmtp_ready_dealer.bin"), Zmtp.Ready("DEALER"), "READY DEALER");
            Bytes(Read("zmtp_ready_router.bin"), Zmtp.Ready("ROUTER"), "READY ROUTER");
            Bytes(Read("zmtp_ping.bin"), Zmtp.Ping(100, Encoding.ASCII.GetBytes("ab")), "PING");
            Bytes(Read("zmtp_pong.bin"), Zmtp.Pong(Encoding.ASCII.GetBytes("ab"), 0, 2), "PONG");
            Bytes(Read("zmtp_error.bin"), Zmtp.Error("bad"), "ERROR");
        }

        public static void ZmtpHandshakeWithRouter()
        {
            var s = new FakeStream(Read("zmtp_greeting.bin"), Read("zmtp_ready_router.bin"));
            var c = new ZmtpConnection(s);
            c.Handshake();
            Equal("ROUTER", c.PeerSocketType, "peer Socket-Type");
            var expected = Read("zmtp_greeting.bin").Concat(Read("zmtp_ready_dealer.bin")).ToArray();
            Bytes(expected, s.Written.ToArray(), "what the DEALER sent");
        }

        public static void ZmtpPingIsAnsweredWithPong()
        {
            var s = new FakeStream(Read("zmtp_ping.bin"), Read("zmtp_message_hello.bin"));
            var c = new ZmtpConnection(s);
            var msg = new ZmtpMessage();
            Check(!c.Receive(msg), "a PING alone is not a message: Receive returns without blocking");
            Bytes(Read("zmtp_pong.bin"), s.Written.ToArray(), "PONG sent at once");
            Check(c.Receive(msg), "then the message");
            Equal(1, msg.Count, "frames");
            Bytes(Read("hello.msgpack"), msg.Frames[0], msg.Lengths[0], "message after the PING");
            Bytes(Read("zmtp_pong.bin"), s.Written.ToArray(), "PONG sent");
            Equal(1, c.PingsAnswered, "pings answered");
        }

        public static void ZmtpErrorCommandEndsTheConnection()
        {
            var c = new ZmtpConnection(new FakeStream(Read("zmtp_error.bin")));
            try
            {
                c.Receive(new ZmtpMessage());
                throw new TestFailure("ERROR command did not throw");
            }
            catch (ZmtpException e)
            {
                Equal("bad", e.PeerReason, "ERROR reason");
            }
        }

        public static void ZmtpMessagesAreFramedExactly()
        {
            // one short frame
            var s = new FakeStream();
            var hello = Read("hello.msgpack");
            new ZmtpConnection(s).Send(hello, hello.Length);
            Bytes(Read("zmtp_message_hello.bin"), s.Written.ToArray(), "hello as one frame");

            // header (MORE) + 24-byte pixel frame
            var header = Read("frame.msgpack");
            var pixels = Read("frame.payload.bin");
            s = new FakeStream();
            new ZmtpConnection(s).Send(header, header.Length, pixels, 0, pixels.Length);
            Bytes(Read("zmtp_message_frame.bin"), s.Written.ToArray(), "frame as two frames");
            var msg = new ZmtpMessage();
            Check(new ZmtpConnection(new FakeStream(Read("zmtp_message_frame.bin"))).Receive(msg), "a message");
            Equal(2, msg.Count, "frames");
            Bytes(header, msg.Frames[0], msg.Lengths[0], "frame 0");
            Bytes(pixels, msg.Frames[1], msg.Lengths[1], "frame 1");
            Equal(pixels.Length, msg.Frames[1].Length, "pixel frame buffer has the exact size");

            // a 300-byte body needs the LONG flag
            var body = Enumerable.Range(0, 256).Select(i => (byte)i).Concat(new byte[44]).ToArray();
            s = new FakeStream();
            new ZmtpConnection(s).Send(body, body.Length);
            Bytes(Read("zmtp_long_frame.bin"), s.Written.ToArray(), "long frame");
            Check(new ZmtpConnection(new FakeStream(Read("zmtp_long_frame.bin"))).Receive(msg), "a message");
            Equal(1, msg.Count, "frames");
            Bytes(body, msg.Frames[0], msg.Lengths[0], "long frame body");
        }
    }
}
