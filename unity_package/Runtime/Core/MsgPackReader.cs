// MessagePack reader: accepts every encoding of the types protocol v1 uses (all int widths, float32 and float64,
// str8/16/32, bin8/16/32, arrays, maps, nil, bool). It reads in place from a byte range, so decoding a frame
// header allocates nothing but the strings a caller asks for.
using System;
using System.Collections.Generic;
using System.Text;

namespace WorldBridge.Core
{
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    public enum MsgType { Nil, Bool, Int, Float, Str, Bin, Array, Map, Ext }

    public sealed class MsgPackReader
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        const int MaxDepth = 64;

        byte[] _buf;
        int _pos, _end;
        int _strOffset, _strLength; // the last string read with ReadStringRaw

        public MsgPackReader() { }
        public MsgPackReader(byte[] data) { Reset(data, 0, data.Length); }
        public MsgPackReader(byte[] data, int offset, int count) { Reset(data, offset, count); }

        public void Reset(byte[] data, int offset, int count)
        {
            if (offset < 0 || count < 0 || offset + count > data.Length) throw new ArgumentOutOfRangeException("count");
            _buf = data; _pos = offset; _end = offset + count;
        }

        public int Position { get { return _pos; } }
        public bool AtEnd { get { return _pos >= _end; } }

        byte Next()
        {
            if (_pos >= _end) throw new MsgPackException("truncated msgpack data");
            return _buf[_pos++];
        }

        ulong BigEndian(int bytes)
        {
            Need(bytes);
            ulong v = 0;
            for (int i = 0; i < bytes; i++) v = (v << 8) | _buf[_pos++];
            return v;
        }

        void Need(long bytes)
        {
            if (bytes < 0 || bytes > _end - _pos) throw new MsgPackException("truncated msgpack data");
        }

        public MsgType PeekType()
        {
            if (_pos >= _end) throw new MsgPackException("truncated msgpack data");
            byte b = _buf[_pos];
            if (b <= 0x7f || b >= 0xe0) return MsgType.Int;
            if (b <= 0x8f) return MsgType.Map;
            if (b <= 0x9f) return MsgType.Array;
            if (b <= 0xbf) return MsgType.Str;
            switch (b)
            {
                case 0xc0: return MsgType.Nil;
                case 0xc2: case 0xc3: return MsgType.Bool;
                case 0xc4: case 0xc5: case 0xc6: return MsgType.Bin;
                case 0xca: case 0xcb: return MsgType.Float;
                case 0xcc: case 0xcd: case 0xce: case 0xcf:
                case 0xd0: case 0xd1: case 0xd2: case 0xd3: return MsgType.Int;
                case 0xd9: case 0xda: case 0xdb: return MsgType.Str;
                case 0xdc: case 0xdd: return MsgType.Array;
                case 0xde: case 0xdf: return MsgType.Map;
                case 0xc7: case 0xc8: case 0xc9:
                case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return MsgType.Ext;
                default: throw new MsgPackException("invalid msgpack byte 0x" + b.ToString("x2"));
            }
        }

        /// <summary>Consumes a nil and returns true, or returns false and consumes nothing.</summary>
        public bool TryReadNil()
        {
            if (_pos < _end && _buf[_pos] == 0xc0) { _pos++; return true; }
            return false;
        }

        public bool ReadBool()
        {
            byte b = Next();
            if (b == 0xc2) return false;
            if (b == 0xc3) return true;
            throw Wrong("bool", b);
        }

        /// <summary>Any integer encoding as a signed 64-bit value (a uint64 above long.MaxValue throws).</summary>
        public long ReadInt64()
        {
            bool negative;
            ulong raw = ReadIntRaw(out negative);
            if (!negative && raw > long.MaxValue) throw new MsgPackException("integer " + raw + " does not fit int64");
            return (long)raw;
        }

        /// <summary>Any non-negative integer encoding as an unsigned 64-bit value.</summary>
        public ulong ReadUInt64()
        {
            bool negative;
            ulong raw = ReadIntRaw(out negative);
            if (negative) throw new MsgPackException("integer " + (long)raw + " is negative");
            return raw;
        }

        public int ReadInt32()
        {
            long v = ReadInt64();
            if (v < int.MinValue || v > int.MaxValue) throw new MsgPackException("integer " + v + " does not fit int32");
            return (int)v;
        }

        // Returns the two's-complement bits; `negative` tells whether they mean a negative int64.
        ulong ReadIntRaw(out bool negative)
        {
            byte b = Next();
            negative = false;
            if (b <= 0x7f) return b;
            if (b >= 0xe0) { negative = true; return (ulong)(long)(sbyte)b; }
            switch (b)
            {
                case 0xcc: return BigEndian(1);
                case 0xcd: return BigEndian(2);
                case 0xce: return BigEndian(4);
                case 0xcf: return BigEndian(8);
                case 0xd0: { long v = (sbyte)BigEndian(1); negative = v < 0; return (ulong)v; }
                case 0xd1: { long v = (short)BigEndian(2); negative = v < 0; return (ulong)v; }
                case 0xd2: { long v = (int)BigEndian(4); negative = v < 0; return (ulong)v; }
                case 0xd3: { long v = (long)BigEndian(8); negative = v < 0; return (ulong)v; }
            }
            throw Wrong("integer", b);
        }

        /// <summary>A protocol "number": float64, float32 or any integer.</summary>
        public double ReadDouble()
        {
            byte b = _pos < _end ? _buf[_pos] : (byte)0;
            if (b == 0xcb) { _pos++; return BitConverter.Int64BitsToDouble((long)BigEndian(8)); }
            if (b == 0xca)
            {
                _pos++;
                uint bits = (uint)BigEndian(4);
                return BitConverter.ToSingle(BitConverter.GetBytes(bits), 0);
            }
            if (PeekType() == MsgType.Int)
            {
                bool negative;
                ulong raw = ReadIntRaw(out negative);
                return negative ? (double)(long)raw : (double)raw;
            }
            throw Wrong("number", b);
        }

        /// <summary>Reads a str header and skips its bytes; returns the byte length. The bytes are at
        /// StringOffset in the buffer until the next string is read (no allocation).</summary>
        public int ReadStringRaw()
        {
            byte b = Next();
            long n;
            if (b >= 0xa0 && b <= 0xbf) n = b & 0x1f;
            else if (b == 0xd9) n = (long)BigEndian(1);
            else if (b == 0xda) n = (long)BigEndian(2);
            else if (b == 0xdb) n = (long)BigEndian(4);
            else throw Wrong("string", b);
            Need(n);
            _strOffset = _pos; _strLength = (int)n;
            _pos += (int)n;
            return _strLength;
        }

        /// <summary>Whether the last string read with ReadStringRaw equals this ASCII text (no allocation).</summary>
        public bool LastStringIs(string ascii)
        {
            if (ascii.Length != _strLength) return false;
            for (int i = 0; i < _strLength; i++)
                if (_buf[_strOffset + i] != ascii[i]) return false;
            return true;
        }

        public string ReadString()
        {
            int n = ReadStringRaw();
            try { return Utf8.GetString(_buf, _strOffset, n); }
            catch (ArgumentException) { throw new MsgPackException("string is not valid UTF-8"); }
        }

        /// <summary>Reads a bin header and skips its bytes; returns the length and the offset of the bytes.</summary>
        public int ReadBinRaw(out int offset)
        {
            byte b = Next();
            long n;
            if (b == 0xc4) n = (long)BigEndian(1);
            else if (b == 0xc5) n = (long)BigEndian(2);
            else if (b == 0xc6) n = (long)BigEndian(4);
            else throw Wrong("bin", b);
            Need(n);
            offset = _pos;
            _pos += (int)n;
            return (int)n;
        }

        public byte[] ReadBin()
        {
            int offset;
            int n = ReadBinRaw(out offset);
            var data = new byte[n];
            Buffer.BlockCopy(_buf, offset, data, 0, n);
            return data;
        }

        public int ReadArrayHeader()
        {
            byte b = Next();
            long n;
            if (b >= 0x90 && b <= 0x9f) n = b & 0x0f;
            else if (b == 0xdc) n = (long)BigEndian(2);
            else if (b == 0xdd) n = (long)BigEndian(4);
            else throw Wrong("array", b);
            Need(n); // every element takes at least one byte: a hostile length cannot make us loop or allocate
            return (int)n;
        }

        public int ReadMapHeader()
        {
            byte b = Next();
            long n;
            if (b >= 0x80 && b <= 0x8f) n = b & 0x0f;
            else if (b == 0xde) n = (long)BigEndian(2);
            else if (b == 0xdf) n = (long)BigEndian(4);
            else throw Wrong("map", b);
            Need(2 * n);
            return (int)n;
        }

        /// <summary>Skips one value of any type, containers included.</summary>
        public void Skip() { Skip(0); }

        void Skip(int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("msgpack nesting too deep");
            switch (PeekType())
            {
                case MsgType.Nil: _pos++; break;
                case MsgType.Bool: ReadBool(); break;
                case MsgType.Int: { bool neg; ReadIntRaw(out neg); break; }
                case MsgType.Float: ReadDouble(); break;
                case MsgType.Str: ReadStringRaw(); break;
                case MsgType.Bin: { int off; ReadBinRaw(out off); break; }
                case MsgType.Array: { int n = ReadArrayHeader(); for (int i = 0; i < n; i++) Skip(depth + 1); break; }
                case MsgType.Map: { int n = ReadMapHeader(); for (int i = 0; i < 2 * n; i++) Skip(depth + 1); break; }
                default:
                {
                    byte b = Next();
                    int fixedSize = b == 0xd4 ? 1 : b == 0xd5 ? 2 : b == 0xd6 ? 4 : b == 0xd7 ? 8 : b == 0xd8 ? 16 : -1;
                    long n = fixedSize >= 0 ? fixedSize : (long)BigEndian(b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4);
                    Need(n + 1);
                    _pos += (int)n + 1;
                    break;
                }
            }
        }

        /// <summary>One value as a tree: null, bool, long (or ulong above long.MaxValue), double, string, byte[],
        /// List&lt;object&gt;, MsgMap (string keys, wire order). Ext types are refused.</summary>
        public object ReadObject() { return ReadObject(0); }

        object ReadObject(int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("msgpack nesting too deep");
            switch (PeekType())
            {
                case MsgType.Nil: _pos++; return null;
                case MsgType.Bool: return ReadBool();
                case MsgType.Int:
                {
                    bool negative;
                    ulong raw = ReadIntRaw(out negative);
                    if (!negative && raw > long.MaxValue) return raw;
                    return (long)raw;
                }
                case MsgType.Float: return ReadDouble();
                case MsgType.Str: return ReadString();
                case MsgType.Bin: return ReadBin();
                case MsgType.Array:
                {
                    int n = ReadArrayHeader();
                    var list = new List<object>(n);
                    for (int i = 0; i < n; i++) list.Add(ReadObject(depth + 1));
                    return list;
                }
                case MsgType.Map:
                {
                    int n = ReadMapHeader();
                    var map = new MsgMap();
                    for (int i = 0; i < n; i++)
                    {
                        if (PeekType() != MsgType.Str) throw new MsgPackException("map keys must be strings");
                        string key = ReadString();
                        map.Set(key, ReadObject(depth + 1));
                    }
                    return map;
                }
                default: throw new MsgPackException("msgpack ext types are not part of the protocol");
            }
        }

        MsgPackException Wrong(string expected, byte got)
        {
            return new MsgPackException("expected " + expected + ", got msgpack byte 0x" + got.ToString("x2"));
        }
    }
}
