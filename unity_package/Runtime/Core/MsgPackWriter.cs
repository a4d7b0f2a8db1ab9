// MessagePack writer for the subset protocol v1 uses (docs/protocol.md section 2).
// Integers take their smallest encoding, floats are always float64 (0xcb), strings are UTF-8 str, bytes are bin,
// so every client writes the same bytes for the same message. The buffer is reused: no allocation per message
// once it has grown to the largest message written.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Text;

namespace WorldBridge.Core
{
    public sealed class MsgPackWriter
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        byte[] _buf;
        int _len;

        public MsgPackWriter(int capacity = 256) { _buf = new byte[Math.Max(16, capacity)]; }

        /// <summary>The written bytes are Buffer[0..Length).</summary>
        public byte[] Buffer { get { return _buf; } }
        public int Length { get { return _len; } }
        public void Clear() { _len = 0; }

        public byte[] ToArray()
        {
            var copy = new byte[_len];
            System.Buffer.BlockCopy(_buf, 0, copy, 0, _len);
            return copy;
        }

        void Ensure(int extra)
        {
            if (_len + extra <= _buf.Length) return;
            var bigger = new byte[Math.Max(_buf.Length * 2, _len + extra)];
            System.Buffer.BlockCopy(_buf, 0, bigger, 0, _len);
            _buf = bigger;
        }

        void Byte(byte b) { Ensure(1); _buf[_len++] = b; }

        void BigEndian(byte marker, ulong v, int bytes)
        {
            Ensure(1 + bytes);
            _buf[_len++] = marker;
            for (int i = bytes - 1; i >= 0; i--) _buf[_len++] = (byte)(v >> (8 * i));
        }

        public void WriteNil() { Byte(0xc0); }
        public void WriteBool(bool v) { Byte(v ? (byte)0xc3 : (byte)0xc2); }

        public void WriteInt(long v)
        {
            if (v >= 0) { WriteUInt((ulong)v); return; }
            if (v >= -32) Byte((byte)(sbyte)v);                       // negative fixint
            else if (v >= sbyte.MinValue) BigEndian(0xd0, (ulong)v, 1);
            else if (v >= short.MinValue) BigEndian(0xd1, (ulong)v, 2);
            else if (v >= int.MinValue) BigEndian(0xd2, (ulong)v, 4);
            else BigEndian(0xd3, (ulong)v, 8);
        }

        public void WriteUInt(ulong v)
        {
            if (v <= 0x7f) Byte((byte)v);                             // positive fixint
            else if (v <= byte.MaxValue) BigEndian(0xcc, v, 1);
            else if (v <= ushort.MaxValue) BigEndian(0xcd, v, 2);
            else if (v <= uint.MaxValue) BigEndian(0xce, v, 4);
            else BigEndian(0xcf, v, 8);
        }

        public void WriteDouble(double v)
        {
            BigEndian(0xcb, (ulong)BitConverter.DoubleToInt64Bits(v), 8);
        }

        public void WriteString(string s)
        {
            int n = Utf8.GetByteCount(s);
            if (n <= 31) Byte((byte)(0xa0 | n));
            else if (n <= byte.MaxValue) BigEndian(0xd9, (ulong)n, 1);
            else if (n <= ushort.MaxValue) BigEndian(0xda, (ulong)n, 2);
            else BigEndian(0xdb, (ulong)n, 4);
            Ensure(n);
            _len += Utf8.GetBytes(s, 0, s.Length, _buf, _len);
        }

        public void WriteBin(byte[] data) { WriteBin(data, 0, data.Length); }

        public void WriteBin(byte[] data, int offset, int count)
        {
            if (count <= byte.MaxValue) BigEndian(0xc4, (ulong)count, 1);
            else if (count <= ushort.MaxValue) BigEndian(0xc5, (ulong)count, 2);
            else BigEndian(0xc6, (ulong)count, 4);
            Ensure(count);
            System.Buffer.BlockCopy(data, offset, _buf, _len, count);
            _len += count;
        }

        public void WriteArrayHeader(int n)
        {
            if (n <= 15) Byte((byte)(0x90 | n));
            else if (n <= ushort.MaxValue) BigEndian(0xdc, (ulong)n, 2);
            else BigEndian(0xdd, (ulong)n, 4);
        }

        public void WriteMapHeader(int n)
        {
            if (n <= 15) Byte((byte)(0x80 | n));
            else if (n <= ushort.MaxValue) BigEndian(0xde, (ulong)n, 2);
            else BigEndian(0xdf, (ulong)n, 4);
        }

        /// <summary>Write a value tree: null, bool, integers, float/double, string, byte[], MsgMap or any
        /// IDictionary with string keys (in its enumeration order), IList.</summary>
        public void WriteObject(object v)
        {
            if (v == null) { WriteNil(); return; }
            if (v is bool) { WriteBool((bool)v); return; }
            if (v is ulong) { WriteUInt((ulong)v); return; }
            if (v is long) { WriteInt((long)v); return; }
            if (v is int) { WriteInt((int)v); return; }
            if (v is uint) { WriteUInt((uint)v); return; }
            if (v is short || v is sbyte) { WriteInt(Convert.ToInt64(v)); return; }
            if (v is ushort || v is byte) { WriteUInt(Convert.ToUInt64(v)); return; }
            if (v is double) { WriteDouble((double)v); return; }
            if (v is float) { WriteDouble((float)v); return; }
            var s = v as string;
            if (s != null) { WriteString(s); return; }
            var bytes = v as byte[];
            if (bytes != null) { WriteBin(bytes); return; }
            var map = v as MsgMap;
            if (map != null)
            {
                WriteMapHeader(map.Count);
                for (int i = 0; i < map.Count; i++) { WriteString(map.KeyAt(i)); WriteObject(map.ValueAt(i)); }
                return;
            }
            var dict = v as IDictionary;
            if (dict != null)
            {
                WriteMapHeader(dict.Count);
                foreach (DictionaryEntry e in dict) { WriteString((string)e.Key); WriteObject(e.Value); }
                return;
            }
            var list = v as IList;
            if (list != null)
            {
                WriteArrayHeader(list.Count);
                foreach (var item in list) WriteObject(item);
                return;
            }
            throw new ArgumentException("cannot encode " + v.GetType().Name + " as msgpack");
        }
    }

    /// <summary>A msgpack map decoded in wire order (string keys). Small maps: lookup is a linear scan.</summary>
    public sealed class MsgMap : IEnumerable<KeyValuePair<string, object>>
    {
        readonly List<string> _keys = new List<string>();
        readonly List<object> _values = new List<object>();

        public int Count { get { return _keys.Count; } }
        public string KeyAt(int i) { return _keys[i]; }
        public object ValueAt(int i) { return _values[i]; }

        /// <summary>Add or replace (a repeated key keeps its first position, last value wins).</summary>
        public void Set(string key, object value)
        {
            int i = _keys.IndexOf(key);
            if (i >= 0) _values[i] = value;
            else { _keys.Add(key); _values.Add(value); }
        }

        public bool ContainsKey(string key) { return _keys.IndexOf(key) >= 0; }

        public object this[string key]
        {
            get { int i = _keys.IndexOf(key); return i >= 0 ? _values[i] : null; }
            set { Set(key, value); }
        }

        public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
        {
            for (int i = 0; i < _keys.Count; i++) yield return new KeyValuePair<string, object>(_keys[i], _values[i]);
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
    }
}
