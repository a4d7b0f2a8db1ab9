// Protocol 1.3 guidance (docs/protocol.md section 4c): the engine's cheap buffers of its camera (flat colour,
// ray depth, ids), sent inline in an input for worlds whose welcome lists the "guidance" capability, and the
// welcome's `guidance` map (GuidanceOffer) saying which buffers and sizes such a world takes.
using System;
using System.Collections.Generic;

namespace WorldBridge.Core
{
    /// <summary>Encoding of Guidance.Depth: little-endian IEEE 754 binary32 (4 bytes a pixel) or binary16 (2).</summary>
    public enum GuidanceDepthFormat { F32, F16 }

    /// <summary>One guidance map of an input: buffers of the camera the input's pose places, all Width x Height,
    /// rows in RowOrder, no padding. Each buffer is optional (null: not sent); a guided world needs the ones its
    /// welcome lists (GuidanceOffer.Buffers). Once handed to WorldBridgeClient.SendInput the object and its
    /// arrays belong to the client (it encodes them later, on its own thread): do not change them afterwards.</summary>
    public sealed class Guidance
    {
        public int Width, Height;
        /// <summary>First row of every buffer; GPU readbacks in Unity are BottomUp.</summary>
        public RowOrder RowOrder = RowOrder.TopDown;
        /// <summary>rgb8, Width*Height*3 bytes: a flat, unlit colour per material.</summary>
        public byte[] Colour;
        /// <summary>Distance from the camera to the surface along each pixel's ray, in world units, as
        /// DepthFormat (Width*Height*4 or *2 bytes); +inf or any value &lt;= 0 where there is no surface. Never NaN.</summary>
        public byte[] Depth;
        public GuidanceDepthFormat DepthFormat = GuidanceDepthFormat.F32;
        /// <summary>uint16 little-endian material or semantic id per pixel (Width*Height*2 bytes).</summary>
        public byte[] Ids;

        public const string ColourBuffer = "colour", DepthBuffer = "depth", IdsBuffer = "ids";

        public static int DepthBytesPerPixel(GuidanceDepthFormat f) { return f == GuidanceDepthFormat.F16 ? 2 : 4; }

        /// <summary>The buffer's bytes on the wire (0 when absent).</summary>
        public int BufferBytes
        {
            get { return (Colour != null ? Colour.Length : 0) + (Depth != null ? Depth.Length : 0) + (Ids != null ? Ids.Length : 0); }
        }

        public bool Has(string buffer)
        {
            switch (buffer)
            {
                case ColourBuffer: return Colour != null;
                case DepthBuffer: return Depth != null;
                case IdsBuffer: return Ids != null;
            }
            return false;
        }

        /// <summary>Check what the daemon would refuse and the client can see cheaply: a size of at least 1x1,
        /// at least one buffer, each buffer's byte count, no NaN in Depth. Throws ArgumentException naming the
        /// field as the daemon's 422 would ("guidance.depth is 16 bytes, expected 32 (4x2 f32)").</summary>
        public void Validate()
        {
            if (Width < 1 || Height < 1)
                throw new ArgumentException("guidance.width and guidance.height must be at least 1, got " + Width + "x" + Height);
            if (Colour == null && Depth == null && Ids == null)
                throw new ArgumentException("guidance has no buffer: set at least one of Colour, Depth, Ids");
            long pixels = (long)Width * Height;
            CheckBytes(Colour, ColourBuffer, pixels * 3, "rgb8");
            CheckBytes(Depth, DepthBuffer, pixels * DepthBytesPerPixel(DepthFormat), DepthFormat == GuidanceDepthFormat.F16 ? "f16" : "f32");
            CheckBytes(Ids, IdsBuffer, pixels * 2, "u16");
            if (Depth != null && HasNaN(Depth, DepthFormat))
                throw new ArgumentException("guidance.depth holds NaN (send +inf or 0 where there is no surface)");
        }

        /// <summary>Validate, then check against a guided world's offer: the size must be one it takes and every
        /// buffer it reads must be present. Throws ArgumentException naming the field.</summary>
        public void Validate(GuidanceOffer offer)
        {
            Validate();
            if (offer == null) return;
            if (!offer.Allows(Width, Height))
                throw new ArgumentException("guidance.width/guidance.height " + Width + "x" + Height + " is not a size this world takes (" + offer.SizesText() + ")");
            foreach (var b in offer.Buffers)
                if (!Has(b)) throw new ArgumentException("guidance." + b + " is required: this world reads " + string.Join(", ", offer.Buffers));
        }

        void CheckBytes(byte[] data, string name, long expected, string what)
        {
            if (data != null && data.Length != expected)
                throw new ArgumentException("guidance." + name + " is " + data.Length + " bytes, expected " + expected + " (" + Width + "x" + Height + " " + what + ")");
        }

        static bool HasNaN(byte[] depth, GuidanceDepthFormat f)
        {
            if (f == GuidanceDepthFormat.F16)
            {
                for (int i = 0; i + 1 < depth.Length; i += 2)
                    if ((depth[i + 1] & 0x7c) == 0x7c && ((depth[i + 1] & 0x03) != 0 || depth[i] != 0)) return true;
                return false;
            }
            for (int i = 0; i + 3 < depth.Length; i += 4)
                if ((depth[i + 3] & 0x7f) == 0x7f && (depth[i + 2] & 0x80) != 0 && ((depth[i + 2] & 0x7f) != 0 || depth[i + 1] != 0 || depth[i] != 0)) return true;
            return false;
        }

        // ------------------------------------------------------------------------- helpers to fill buffers

        /// <summary>Depths in world units (row-major, RowOrder as the Guidance's) -> Depth bytes in `format`,
        /// little-endian. NaN becomes 0 (no surface); in F16 distances over 65504 become +inf (no surface).</summary>
        public static byte[] EncodeDepth(float[] depth, GuidanceDepthFormat format)
        {
            if (depth == null) throw new ArgumentNullException("depth");
            var bytes = new byte[depth.Length * DepthBytesPerPixel(format)];
            for (int i = 0; i < depth.Length; i++)
            {
                float d = float.IsNaN(depth[i]) ? 0f : depth[i];
                if (format == GuidanceDepthFormat.F16)
                {
                    ushort h = HalfFromFloat(d);
                    bytes[2 * i] = (byte)h; bytes[2 * i + 1] = (byte)(h >> 8);
                }
                else
                {
                    uint u = SingleBits(d);
                    bytes[4 * i] = (byte)u; bytes[4 * i + 1] = (byte)(u >> 8); bytes[4 * i + 2] = (byte)(u >> 16); bytes[4 * i + 3] = (byte)(u >> 24);
                }
            }
            return bytes;
        }

        /// <summary>Ids (row-major) -> Ids bytes, uint16 little-endian.</summary>
        public static byte[] EncodeIds(ushort[] ids)
        {
            if (ids == null) throw new ArgumentNullException("ids");
            var bytes = new byte[ids.Length * 2];
            for (int i = 0; i < ids.Length; i++) { bytes[2 * i] = (byte)ids[i]; bytes[2 * i + 1] = (byte)(ids[i] >> 8); }
            return bytes;
        }

        /// <summary>Depth bytes -> floats (for checks and tools): F16 is widened exactly, +inf stays +inf.</summary>
        public static float[] DecodeDepth(byte[] depth, GuidanceDepthFormat format)
        {
            int n = depth.Length / DepthBytesPerPixel(format);
            var d = new float[n];
            for (int i = 0; i < n; i++)
            {
                if (format == GuidanceDepthFormat.F16) d[i] = FloatFromHalf((ushort)(depth[2 * i] | depth[2 * i + 1] << 8));
                else d[i] = BitConverter.ToSingle(BitConverter.IsLittleEndian ? depth : Reverse4(depth, 4 * i), BitConverter.IsLittleEndian ? 4 * i : 0);
            }
            return d;
        }

        static byte[] Reverse4(byte[] b, int at) { return new[] { b[at + 3], b[at + 2], b[at + 1], b[at] }; }

        static uint SingleBits(float f)
        {
            var b = BitConverter.GetBytes(f);
            if (!BitConverter.IsLittleEndian) Array.Reverse(b);
            return (uint)(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24);
        }

        /// <summary>IEEE 754 binary32 -> binary16, round to nearest even (as numpy's astype(float16)): overflow
        /// gives +-inf, NaN stays NaN, tiny values become subnormals or zero.</summary>
        public static ushort HalfFromFloat(float value)
        {
            uint f = SingleBits(value);
            uint sign = (f >> 16) & 0x8000u;
            int exp = (int)((f >> 23) & 0xff);
            uint mant = f & 0x7fffffu;
            if (exp == 0xff) return (ushort)(sign | 0x7c00u | (mant != 0 ? 0x200u | (mant >> 13) : 0u));
            int e = exp - 127 + 15;
            if (e >= 0x1f) return (ushort)(sign | 0x7c00u);
            if (e <= 0)
            {
                if (e < -10) return (ushort)sign;
                mant |= 0x800000u;
                int shift = 14 - e;
                uint half = mant >> shift;
                uint rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
                if (rest > halfway || (rest == halfway && (half & 1u) != 0)) half++;
                return (ushort)(sign | half);
            }
            uint h = ((uint)e << 10) | (mant >> 13);
            uint r = mant & 0x1fffu;
            if (r > 0x1000u || (r == 0x1000u && (h & 1u) != 0)) h++; // may carry into the exponent: still right
            return (ushort)(sign | h);
        }

        /// <summary>IEEE 754 binary16 -> binary32 (exact).</summary>
        public static float FloatFromHalf(ushort h)
        {
            bool negative = (h & 0x8000) != 0;
            int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
            float magnitude;
            if (exp == 0x1f) { if (mant != 0) return float.NaN; magnitude = float.PositiveInfinity; }
            else if (exp == 0) magnitude = mant * (1f / 16777216f); // subnormal: mant * 2^-24
            else magnitude = (1f + mant / 1024f) * (float)Math.Pow(2, exp - 15);
            return negative ? -magnitude : magnitude; // -0 stays -0
        }
    }

    /// <summary>The welcome's `guidance` map (1.3), present for worlds with the "guidance" capability: the buffers
    /// the world reads and the sizes it takes, Width/s x Height/s (rounded down) for each s in Scales.</summary>
    public sealed class GuidanceOffer
    {
        public string[] Buffers = new string[0];
        public int Width, Height;
        public int[] Scales = new int[0];

        public bool Reads(string buffer) { return Array.IndexOf(Buffers, buffer) >= 0; }

        /// <summary>The buffer size at fraction `scale` (rounded down, as the daemon does).</summary>
        public void SizeAt(int scale, out int width, out int height)
        {
            if (scale < 1) throw new ArgumentOutOfRangeException("scale", "scale must be at least 1");
            width = Width / scale;
            height = Height / scale;
        }

        /// <summary>Whether Width x Height is one of the sizes this world takes.</summary>
        public bool Allows(int width, int height)
        {
            foreach (int s in Scales)
            {
                if (s < 1) continue;
                if (Width / s == width && Height / s == height && width >= 1 && height >= 1) return true;
            }
            return false;
        }

        /// <summary>The listed scale closest to `wanted` (wanted itself when listed; the finer one on a tie);
        /// 0 when the world lists none that gives a size of at least 1x1.</summary>
        public int NearestScale(int wanted)
        {
            int best = 0;
            foreach (int s in Scales)
            {
                if (s < 1 || Width / s < 1 || Height / s < 1) continue;
                if (best == 0 || Math.Abs(s - wanted) < Math.Abs(best - wanted) || (Math.Abs(s - wanted) == Math.Abs(best - wanted) && s < best)) best = s;
            }
            return best;
        }

        internal string SizesText()
        {
            var sizes = new List<string>();
            foreach (int s in Scales) if (s >= 1 && Width / s >= 1 && Height / s >= 1) sizes.Add(Width / s + "x" + Height / s);
            return sizes.Count == 0 ? "none" : string.Join(", ", sizes.ToArray());
        }
    }
}
