// Protocol v1 messages (1.1: recording; 1.2: prompt; 1.3: guidance) (docs/protocol.md sections 3-4): writers for what a client sends, in the documented key
// order so the bytes equal tests/vectors/, and decoders for what the daemon sends (any key order, unknown keys
// ignored, any integer/float encoding where the spec says "number").
using System;
using System.Collections.Generic;

namespace WorldBridge.Core
{
    public enum PixelFormat { Rgb8, Rgba8, Jpeg }
    public enum RowOrder { TopDown, BottomUp }
    public enum MessageKind { Unknown, Welcome, Frame, ResetOk, Pong, Error, Bye, RecordOk, RecordDone }

    /// <summary>A camera pose: position p and unit quaternion q (x, y, z, w), camera-to-world, in the engine
    /// convention named in hello (Unity: transform.position and transform.rotation as they are).</summary>
    [Serializable]
    public struct CameraPose
    {
        public double Px, Py, Pz, Qx, Qy, Qz, Qw;

        public CameraPose(double px, double py, double pz, double qx, double qy, double qz, double qw)
        {
            Px = px; Py = py; Pz = pz; Qx = qx; Qy = qy; Qz = qz; Qw = qw;
        }

        public static readonly CameraPose Identity = new CameraPose(0, 0, 0, 0, 0, 0, 1);
        public override string ToString() { return string.Format("p=({0}, {1}, {2}) q=({3}, {4}, {5}, {6})", Px, Py, Pz, Qx, Qy, Qz, Qw); }
    }

    /// <summary>Controller state for one input message.</summary>
    public struct InputState
    {
        public const uint ButtonRun = 1u << 0;

        public double MoveX;     // strafe right, [-1, 1]
        public double MoveY;     // forward, [-1, 1]
        public double LookYaw;   // degrees to the right since the previous input
        public double LookPitch; // degrees up since the previous input
        public uint Buttons;     // bit 0 = run
        public bool HasPose;     // send Pose (the engine owns the camera)
        public CameraPose Pose;
        public double FovDeg;    // vertical field of view in degrees; 0 = not sent
        public bool HasImage;    // 1.1, while recording: the engine's frame, its bytes in the second frame
        public ImageSpec Image;
        /// <summary>1.3: the engine's buffers of this camera (send Pose too); null: none. The input's last key.</summary>
        public Guidance Guidance;
    }

    /// <summary>What the client asks for in hello.</summary>
    public sealed class HelloRequest
    {
        public string Client = "unity/" + WorldBridgeClient.Version;
        public string Engine = "unity";
        public int Width = 256, Height = 256;
        public PixelFormat Format = PixelFormat.Rgb8;
        public RowOrder RowOrder = RowOrder.BottomUp; // Unity's LoadRawTextureData wants the bottom row first
        public int Credits = 2;
        public string[] Capabilities = new string[0];
        public int JpegQuality = 85;
        public long Seed = 0;
        public string Token = "";
        /// <summary>1.2: the scene in text for worlds with the "prompt" capability, at most
        /// Protocol.MaxPromptBytes as UTF-8; empty: the world's default. Not sent when empty.</summary>
        public string Prompt = "";
    }

    public sealed class Limits
    {
        public long MaxMessageBytes = 4 << 20;
        public int MaxSessions = 32;
        public double IdleTimeoutS = 60;
        public int MaxCredits = 16;
        public int MaxWidth = 1024, MaxHeight = 1024;
    }

    public sealed class Welcome
    {
        public int Major, Minor;
        public string Session = "", World = "";
        public int Width, Height;
        public PixelFormat Format;
        public RowOrder RowOrder;
        public int JpegQuality;
        public double FovDeg;
        public string[] Capabilities = new string[0];
        public Limits Limits = new Limits();
        /// <summary>1.3: what a world with the "guidance" capability reads and at which sizes; null otherwise.</summary>
        public GuidanceOffer Guidance;

        public bool Has(string capability) { return Array.IndexOf(Capabilities, capability) >= 0; }
    }

    /// <summary>A frame message's map. One instance is reused per slot, so decoding allocates nothing.</summary>
    public sealed class FrameHeader
    {
        public long Seq, InputSeq, Episode;
        public double InputT;
        public int Width, Height;
        public PixelFormat Format;
        public RowOrder RowOrder;
        public CameraPose Pose = CameraPose.Identity;
        public double QueueMs, StepMs, EncodeMs;

        public void CopyFrom(FrameHeader o)
        {
            Seq = o.Seq; InputSeq = o.InputSeq; Episode = o.Episode; InputT = o.InputT; Width = o.Width;
            Height = o.Height; Format = o.Format; RowOrder = o.RowOrder; Pose = o.Pose; QueueMs = o.QueueMs;
            StepMs = o.StepMs; EncodeMs = o.EncodeMs;
        }

        /// <summary>Bytes the pixel frame must have (jpeg: unknown, -1).</summary>
        public int ExpectedPayloadBytes
        {
            get { return Format == PixelFormat.Jpeg ? -1 : Width * Height * (Format == PixelFormat.Rgb8 ? 3 : 4); }
        }
    }

    /// <summary>An error message from the daemon (or, with Code 0, one the client itself detected).</summary>
    public sealed class ServerError
    {
        public int Code;
        public string Name = "", Message = "", Ref = "";

        public ServerError() { }
        public ServerError(int code, string name, string message, string reference = "")
        {
            Code = code; Name = name; Message = message; Ref = reference;
        }

        /// <summary>401 unauthorized and 426 version: reconnecting cannot help.</summary>
        public bool IsPermanent { get { return Code == 401 || Code == 426; } }
        /// <summary>Errors after which the daemon holds no session for this connection.</summary>
        public bool EndsSession { get { return Code == 401 || Code == 408 || Code == 409 || Code == 426 || Code == 503; } }

        public override string ToString()
        {
            return Name + " (" + Code + "): " + Message + (string.IsNullOrEmpty(Ref) ? "" : " [" + Ref + "]");
        }
    }

    public struct ResetOk { public long Episode, Seed; }
    /// <summary>record_ok (1.1): the name the daemon chose, the size recorded images must have, the limits.</summary>
    public struct RecordOk { public string Name; public int Width, Height; public long MaxFrames, MaxBytes; }
    /// <summary>record_done (1.1): the recording is written; Path is on the daemon's machine.</summary>
    public struct RecordDone { public string Name, Path; public long Frames, Episodes; }
    public struct Pong { public double T, ServerTime; }

    /// <summary>Image that a reset starts from, or (1.1) the engine's frame an input carries while recording:
    /// its bytes travel as the message's second frame.</summary>
    public struct ImageSpec
    {
        public int Width, Height;
        public PixelFormat Format;
        public RowOrder RowOrder;
    }

    public static class Protocol
    {
        public const int Major = 1, Minor = 3;
        /// <summary>1.3: the welcome capability of worlds that render from the engine's guidance buffers.</summary>
        public const string CapabilityGuidance = "guidance";
        /// <summary>1.2: the longest prompt (hello, reset) the daemon takes, in bytes of UTF-8 (longer: 422).</summary>
        public const int MaxPromptBytes = 2000;

        public static string Name(PixelFormat f) { return f == PixelFormat.Rgb8 ? "rgb8" : f == PixelFormat.Rgba8 ? "rgba8" : "jpeg"; }
        public static string Name(RowOrder o) { return o == RowOrder.BottomUp ? "bottom_up" : "top_down"; }

        public static PixelFormat ParseFormat(string s)
        {
            switch (s)
            {
                case "rgb8": return PixelFormat.Rgb8;
                case "rgba8": return PixelFormat.Rgba8;
                case "jpeg": return PixelFormat.Jpeg;
            }
            throw new MsgPackException("unknown pixel format " + s);
        }

        public static RowOrder ParseRowOrder(string s)
        {
            if (s == "top_down") return RowOrder.TopDown;
            if (s == "bottom_up") return RowOrder.BottomUp;
            throw new MsgPackException("unknown row order " + s);
        }

        // ------------------------------------------------------------------------------- client -> daemon

        public static void WriteHello(MsgPackWriter w, HelloRequest h)
        {
            bool token = !string.IsNullOrEmpty(h.Token), prompt = !string.IsNullOrEmpty(h.Prompt);
            w.WriteMapHeader(13 + (token ? 1 : 0) + (prompt ? 1 : 0));
            w.WriteString("type"); w.WriteString("hello");
            w.WriteString("major"); w.WriteInt(Major);
            w.WriteString("minor"); w.WriteInt(Minor);
            w.WriteString("client"); w.WriteString(h.Client);
            w.WriteString("engine"); w.WriteString(h.Engine);
            w.WriteString("width"); w.WriteInt(h.Width);
            w.WriteString("height"); w.WriteInt(h.Height);
            w.WriteString("format"); w.WriteString(Name(h.Format));
            w.WriteString("row_order"); w.WriteString(Name(h.RowOrder));
            w.WriteString("credits"); w.WriteInt(h.Credits);
            w.WriteString("capabilities");
            var caps = h.Capabilities ?? new string[0];
            w.WriteArrayHeader(caps.Length);
            foreach (var c in caps) w.WriteString(c);
            w.WriteString("jpeg_quality"); w.WriteInt(h.JpegQuality);
            w.WriteString("seed"); w.WriteInt(h.Seed);
            if (token) { w.WriteString("token"); w.WriteString(h.Token); }
            if (prompt) { w.WriteString("prompt"); w.WriteString(h.Prompt); }
        }

        public static void WriteInput(MsgPackWriter w, long seq, double t, ref InputState input)
        {
            bool fov = input.FovDeg > 0, guidance = input.Guidance != null;
            w.WriteMapHeader(6 + (input.HasPose ? 1 : 0) + (fov ? 1 : 0) + (input.HasImage ? 1 : 0) + (guidance ? 1 : 0));
            w.WriteString("type"); w.WriteString("input");
            w.WriteString("seq"); w.WriteInt(seq);
            w.WriteString("t"); w.WriteDouble(t);
            w.WriteString("move"); w.WriteArrayHeader(2); w.WriteDouble(input.MoveX); w.WriteDouble(input.MoveY);
            w.WriteString("look"); w.WriteArrayHeader(2); w.WriteDouble(input.LookYaw); w.WriteDouble(input.LookPitch);
            w.WriteString("buttons"); w.WriteUInt(input.Buttons);
            if (input.HasPose) { w.WriteString("pose"); WritePose(w, ref input.Pose); }
            if (fov) { w.WriteString("fov_deg"); w.WriteDouble(input.FovDeg); }
            if (input.HasImage) { w.WriteString("image"); WriteImageSpec(w, ref input.Image); }
            if (guidance) { w.WriteString("guidance"); WriteGuidance(w, input.Guidance); }
        }

        public static string Name(GuidanceDepthFormat f) { return f == GuidanceDepthFormat.F16 ? "f16" : "f32"; }

        /// <summary>1.3: an input's guidance map, keys in the order of section 4c (width, height, row_order,
        /// colour, depth, depth_format, ids; absent buffers left out, depth_format only with depth). Writes what
        /// it is given: Guidance.Validate checks it (WorldBridgeClient.SendInput does).</summary>
        public static void WriteGuidance(MsgPackWriter w, Guidance g)
        {
            w.WriteMapHeader(3 + (g.Colour != null ? 1 : 0) + (g.Depth != null ? 2 : 0) + (g.Ids != null ? 1 : 0));
            w.WriteString("width"); w.WriteInt(g.Width);
            w.WriteString("height"); w.WriteInt(g.Height);
            w.WriteString("row_order"); w.WriteString(Name(g.RowOrder));
            if (g.Colour != null) { w.WriteString("colour"); w.WriteBin(g.Colour); }
            if (g.Depth != null)
            {
                w.WriteString("depth"); w.WriteBin(g.Depth);
                w.WriteString("depth_format"); w.WriteString(Name(g.DepthFormat));
            }
            if (g.Ids != null) { w.WriteString("ids"); w.WriteBin(g.Ids); }
        }

        public static void WriteCredit(MsgPackWriter w, int n)
        {
            w.WriteMapHeader(2);
            w.WriteString("type"); w.WriteString("credit");
            w.WriteString("n"); w.WriteInt(n);
        }

        /// <summary>reset; pose and image are optional (null). With an image, send its bytes as a second frame.
        /// prompt (1.2): the scene in text from the new episode on; null or empty: not sent (the session's stays).</summary>
        public static void WriteReset(MsgPackWriter w, long seed, CameraPose? pose, ImageSpec? image, string prompt = null)
        {
            bool hasPrompt = !string.IsNullOrEmpty(prompt);
            w.WriteMapHeader(2 + (pose.HasValue ? 1 : 0) + (image.HasValue ? 1 : 0) + (hasPrompt ? 1 : 0));
            w.WriteString("type"); w.WriteString("reset");
            w.WriteString("seed"); w.WriteInt(seed);
            if (pose.HasValue) { var p = pose.Value; w.WriteString("pose"); WritePose(w, ref p); }
            if (image.HasValue) { var im = image.Value; w.WriteString("image"); WriteImageSpec(w, ref im); }
            if (hasPrompt) { w.WriteString("prompt"); w.WriteString(prompt); }
        }

        static void WriteImageSpec(MsgPackWriter w, ref ImageSpec im)
        {
            w.WriteMapHeader(4);
            w.WriteString("width"); w.WriteInt(im.Width);
            w.WriteString("height"); w.WriteInt(im.Height);
            w.WriteString("format"); w.WriteString(Name(im.Format));
            w.WriteString("row_order"); w.WriteString(Name(im.RowOrder));
        }

        /// <summary>record_start (1.1). The name is only a wish: the daemon keeps [A-Za-z0-9_-] and picks the
        /// folder itself. Empty: not sent.</summary>
        public static void WriteRecordStart(MsgPackWriter w, string name)
        {
            bool named = !string.IsNullOrEmpty(name);
            w.WriteMapHeader(named ? 2 : 1);
            w.WriteString("type"); w.WriteString("record_start");
            if (named) { w.WriteString("name"); w.WriteString(name); }
        }

        public static void WriteRecordStop(MsgPackWriter w)
        {
            w.WriteMapHeader(1);
            w.WriteString("type"); w.WriteString("record_stop");
        }

        public static void WritePing(MsgPackWriter w, double t)
        {
            w.WriteMapHeader(2);
            w.WriteString("type"); w.WriteString("ping");
            w.WriteString("t"); w.WriteDouble(t);
        }

        public static void WriteBye(MsgPackWriter w)
        {
            w.WriteMapHeader(1);
            w.WriteString("type"); w.WriteString("bye");
        }

        static void WritePose(MsgPackWriter w, ref CameraPose p)
        {
            w.WriteMapHeader(2);
            w.WriteString("p"); w.WriteArrayHeader(3); w.WriteDouble(p.Px); w.WriteDouble(p.Py); w.WriteDouble(p.Pz);
            w.WriteString("q"); w.WriteArrayHeader(4);
            w.WriteDouble(p.Qx); w.WriteDouble(p.Qy); w.WriteDouble(p.Qz); w.WriteDouble(p.Qw);
        }

        // ------------------------------------------------------------------------------- daemon -> client

        /// <summary>The kind of the message in data[0..length); throws MsgPackException when it is not a map
        /// with a string "type". Allocates nothing.</summary>
        public static MessageKind ReadKind(MsgPackReader r, byte[] data, int length)
        {
            r.Reset(data, 0, length);
            if (r.PeekType() != MsgType.Map) throw new MsgPackException("message is not a map");
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                if (r.PeekType() != MsgType.Str) throw new MsgPackException("map keys must be strings");
                r.ReadStringRaw();
                if (!r.LastStringIs("type")) { r.Skip(); continue; }
                if (r.PeekType() != MsgType.Str) break;
                r.ReadStringRaw();
                if (r.LastStringIs("frame")) return MessageKind.Frame;
                if (r.LastStringIs("welcome")) return MessageKind.Welcome;
                if (r.LastStringIs("error")) return MessageKind.Error;
                if (r.LastStringIs("pong")) return MessageKind.Pong;
                if (r.LastStringIs("reset_ok")) return MessageKind.ResetOk;
                if (r.LastStringIs("bye")) return MessageKind.Bye;
                if (r.LastStringIs("record_ok")) return MessageKind.RecordOk;
                if (r.LastStringIs("record_done")) return MessageKind.RecordDone;
                return MessageKind.Unknown;
            }
            throw new MsgPackException("message has no string \"type\"");
        }

        /// <summary>The "type" string (allocates; for logs and unknown types).</summary>
        public static string ReadTypeName(byte[] data, int length)
        {
            var m = new MsgPackReader(data, 0, length).ReadObject() as MsgMap;
            return m == null ? null : m["type"] as string;
        }

        /// <summary>Decode a frame map into `into` without allocating.</summary>
        public static void ReadFrame(MsgPackReader r, byte[] data, int length, FrameHeader into)
        {
            r.Reset(data, 0, length);
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                r.ReadStringRaw();
                if (r.TryReadNil()) continue;
                if (r.LastStringIs("seq")) into.Seq = r.ReadInt64();
                else if (r.LastStringIs("input_seq")) into.InputSeq = r.ReadInt64();
                else if (r.LastStringIs("input_t")) into.InputT = r.ReadDouble();
                else if (r.LastStringIs("episode")) into.Episode = r.ReadInt64();
                else if (r.LastStringIs("width")) into.Width = r.ReadInt32();
                else if (r.LastStringIs("height")) into.Height = r.ReadInt32();
                else if (r.LastStringIs("format")) into.Format = ReadFormatRaw(r);
                else if (r.LastStringIs("row_order")) into.RowOrder = ReadRowOrderRaw(r);
                else if (r.LastStringIs("pose")) into.Pose = ReadPose(r);
                else if (r.LastStringIs("timings"))
                {
                    int m = r.ReadMapHeader();
                    for (int j = 0; j < m; j++)
                    {
                        r.ReadStringRaw();
                        if (r.LastStringIs("queue_ms")) into.QueueMs = r.ReadDouble();
                        else if (r.LastStringIs("step_ms")) into.StepMs = r.ReadDouble();
                        else if (r.LastStringIs("encode_ms")) into.EncodeMs = r.ReadDouble();
                        else r.Skip();
                    }
                }
                else r.Skip();
            }
        }

        static PixelFormat ReadFormatRaw(MsgPackReader r)
        {
            r.ReadStringRaw();
            if (r.LastStringIs("rgb8")) return PixelFormat.Rgb8;
            if (r.LastStringIs("rgba8")) return PixelFormat.Rgba8;
            if (r.LastStringIs("jpeg")) return PixelFormat.Jpeg;
            throw new MsgPackException("unknown pixel format");
        }

        static RowOrder ReadRowOrderRaw(MsgPackReader r)
        {
            r.ReadStringRaw();
            if (r.LastStringIs("top_down")) return RowOrder.TopDown;
            if (r.LastStringIs("bottom_up")) return RowOrder.BottomUp;
            throw new MsgPackException("unknown row order");
        }

        /// <summary>{"p": [x, y, z], "q": [x, y, z, w]}</summary>
        public static CameraPose ReadPose(MsgPackReader r)
        {
            var pose = CameraPose.Identity;
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                r.ReadStringRaw();
                if (r.LastStringIs("p"))
                {
                    if (r.ReadArrayHeader() != 3) throw new MsgPackException("pose.p must have 3 numbers");
                    pose.Px = r.ReadDouble(); pose.Py = r.ReadDouble(); pose.Pz = r.ReadDouble();
                }
                else if (r.LastStringIs("q"))
                {
                    if (r.ReadArrayHeader() != 4) throw new MsgPackException("pose.q must have 4 numbers");
                    pose.Qx = r.ReadDouble(); pose.Qy = r.ReadDouble(); pose.Qz = r.ReadDouble(); pose.Qw = r.ReadDouble();
                }
                else r.Skip();
            }
            return pose;
        }

        public static Welcome ReadWelcome(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            var w = new Welcome
            {
                Major = Int(m, "major", 0), Minor = Int(m, "minor", 0), Session = Str(m, "session", ""),
                World = Str(m, "world", ""), Width = Int(m, "width", 0), Height = Int(m, "height", 0),
                Format = ParseFormat(Str(m, "format", "rgb8")), RowOrder = ParseRowOrder(Str(m, "row_order", "top_down")),
                JpegQuality = Int(m, "jpeg_quality", 85), FovDeg = Num(m, "fov_deg", 60.0),
            };
            var caps = m["capabilities"] as List<object>;
            if (caps != null)
            {
                var list = new List<string>();
                foreach (var c in caps) { var s = c as string; if (s != null) list.Add(s); }
                w.Capabilities = list.ToArray();
            }
            var lim = m["limits"] as MsgMap;
            if (lim != null)
            {
                w.Limits.MaxMessageBytes = Long(lim, "max_message_bytes", w.Limits.MaxMessageBytes);
                w.Limits.MaxSessions = Int(lim, "max_sessions", w.Limits.MaxSessions);
                w.Limits.IdleTimeoutS = Num(lim, "idle_timeout_s", w.Limits.IdleTimeoutS);
                w.Limits.MaxCredits = Int(lim, "max_credits", w.Limits.MaxCredits);
                w.Limits.MaxWidth = Int(lim, "max_width", w.Limits.MaxWidth);
                w.Limits.MaxHeight = Int(lim, "max_height", w.Limits.MaxHeight);
            }
            var g = m["guidance"] as MsgMap;
            if (g != null)
            {
                var offer = new GuidanceOffer { Width = Int(g, "width", w.Width), Height = Int(g, "height", w.Height) };
                var buffers = g["buffers"] as List<object>;
                if (buffers != null)
                {
                    var list = new List<string>();
                    foreach (var b in buffers) { var s = b as string; if (s != null) list.Add(s); }
                    offer.Buffers = list.ToArray();
                }
                var scales = g["scales"] as List<object>;
                if (scales != null)
                {
                    var list = new List<int>();
                    foreach (var s in scales)
                    {
                        if (!(s is long)) throw new MsgPackException("\"guidance.scales\" must hold integers");
                        long v = (long)s;
                        if (v >= 1 && v <= int.MaxValue) list.Add((int)v);
                    }
                    offer.Scales = list.ToArray();
                }
                else offer.Scales = new[] { 1 };
                w.Guidance = offer;
            }
            return w;
        }

        public static ServerError ReadError(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            return new ServerError(Int(m, "code", 0), Str(m, "name", ""), Str(m, "message", ""), Str(m, "ref", ""));
        }

        public static ResetOk ReadResetOk(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            return new ResetOk { Episode = Long(m, "episode", 0), Seed = Long(m, "seed", 0) };
        }

        public static RecordOk ReadRecordOk(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            return new RecordOk
            {
                Name = Str(m, "name", ""), Width = Int(m, "width", 0), Height = Int(m, "height", 0),
                MaxFrames = Long(m, "max_frames", 0), MaxBytes = Long(m, "max_bytes", 0),
            };
        }

        public static RecordDone ReadRecordDone(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            return new RecordDone
            {
                Name = Str(m, "name", ""), Path = Str(m, "path", ""), Frames = Long(m, "frames", 0),
                Episodes = Long(m, "episodes", 0),
            };
        }

        public static Pong ReadPong(byte[] data, int length)
        {
            var m = ReadMap(data, length);
            return new Pong { T = Num(m, "t", 0), ServerTime = Num(m, "server_time", 0) };
        }

        static MsgMap ReadMap(byte[] data, int length)
        {
            var m = new MsgPackReader(data, 0, length).ReadObject() as MsgMap;
            if (m == null) throw new MsgPackException("message is not a map");
            return m;
        }

        static long Long(MsgMap m, string key, long dflt)
        {
            var v = m[key];
            if (v == null) return dflt;
            if (v is long) return (long)v;
            throw new MsgPackException("\"" + key + "\" must be an integer");
        }

        static int Int(MsgMap m, string key, int dflt)
        {
            long v = Long(m, key, dflt);
            if (v < int.MinValue || v > int.MaxValue) throw new MsgPackException("\"" + key + "\" is out of range");
            return (int)v;
        }

        static double Num(MsgMap m, string key, double dflt)
        {
            var v = m[key];
            if (v == null) return dflt;
            if (v is double) return (double)v;
            if (v is long) return (long)v;
            if (v is ulong) return (ulong)v;
            throw new MsgPackException("\"" + key + "\" must be a number");
        }

        static string Str(MsgMap m, string key, string dflt)
        {
            var v = m[key];
            if (v == null) return dflt;
            var s = v as string;
            if (s == null) throw new MsgPackException("\"" + key + "\" must be a string");
            return s;
        }
    }
}
