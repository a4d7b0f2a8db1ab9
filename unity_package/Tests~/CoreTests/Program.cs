// Plain C# tests of WorldBridge.Core, run outside Unity by tests/test_unity_package.py:
//
//   mono CoreTests.exe vectors DIR      byte-exact protocol vectors (tests/vectors) + msgpack/ZMTP edge cases
//                                       + the client over an in-memory ITransport
//   mono CoreTests.exe live ADDRESS     against a real daemon; prints "ACTION kill" / "ACTION start" and waits
//                                       for a line on stdin after each, so the caller can restart the daemon
//
// Prints PASS/FAIL per test and "N passed, N failed" last; exit code 0 only when nothing failed.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Threading;
using WorldBridge.Core;

namespace WorldBridge.CoreTests
{
    sealed class TestFailure : Exception
    {
        public TestFailure(string m) : base(m) { }
    }

    static partial class Program
    {
        static int _passed, _failed;

        static int Main(string[] args)
        {
            if (args.Length != 2 || (args[0] != "vectors" && args[0] != "live"))
            {
                Console.Error.WriteLine("usage: CoreTests.exe vectors DIR | live tcp://HOST:PORT");
                return 2;
            }
            if (args[0] == "vectors")
            {
                VectorTests.Dir = args[1];
                RunAll(typeof(VectorTests));
                RunAll(typeof(EdgeTests));
                RunAll(typeof(TransportTests));
                RunAll(typeof(GuidanceTransportTests));
            }
            else
            {
                LiveTests.Address = args[1];
                RunAll(typeof(LiveTests));
                LiveTests.Cleanup();
            }
            Console.WriteLine("{0} passed, {1} failed", _passed, _failed);
            return _failed == 0 ? 0 : 1;
        }

        // Public static void methods run in declaration order; a test stops at its first failed check.
        static void RunAll(Type t)
        {
            foreach (var m in t.GetMethods(BindingFlags.Public | BindingFlags.Static).OrderBy(m => m.MetadataToken))
            {
                if (m.ReturnType != typeof(void) || m.GetParameters().Length != 0) continue;
                var sw = Stopwatch.StartNew();
                try
                {
                    m.Invoke(null, null);
                    _passed++;
                    Console.WriteLine("PASS {0}.{1} ({2} ms)", t.Name, m.Name, sw.ElapsedMilliseconds);
                }
                catch (TargetInvocationException e)
                {
                    _failed++;
                    var inner = e.InnerException;
                    Console.WriteLine("FAIL {0}.{1}: {2}", t.Name, m.Name, inner is TestFailure ? inner.Message : inner.ToString());
                }
                Console.Out.Flush();
            }
        }

        public static void Check(bool ok, string what)
        {
            if (!ok) throw new TestFailure(what);
        }

        public static void Equal(object expected, object actual, string what)
        {
            if (!Equals(expected, actual))
                throw new TestFailure(what + ": expected " + Show(expected) + ", got " + Show(actual));
        }

        public static void Bytes(byte[] expected, byte[] actual, int actualLength, string what)
        {
            if (actualLength != expected.Length)
                throw new TestFailure(what + ": expected " + expected.Length + " bytes, got " + actualLength + "\n  expected " + Hex(expected, expected.Length) + "\n  got      " + Hex(actual, actualLength));
            for (int i = 0; i < expected.Length; i++)
                if (expected[i] != actual[i])
                    throw new TestFailure(what + ": first difference at byte " + i + "\n  expected " + Hex(expected, expected.Length) + "\n  got      " + Hex(actual, actualLength));
        }

        public static void Bytes(byte[] expected, byte[] actual, string what) { Bytes(expected, actual, actual.Length, what); }

        public static string Hex(byte[] b, int n)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < Math.Min(n, 96); i++) sb.Append(b[i].ToString("x2"));
            if (n > 96) sb.Append("...");
            return sb.ToString();
        }

        public static string Show(object o)
        {
            if (o == null) return "null";
            var b = o as byte[];
            if (b != null) return "bin(" + Hex(b, b.Length) + ")";
            if (o is string) return "\"" + o + "\"";
            if (o is double) return ((double)o).ToString("R") + "(double)";
            if (o is long || o is ulong) return o + "(" + o.GetType().Name + ")";
            return o.ToString();
        }

        /// <summary>Deep comparison of a decoded msgpack tree with a JSON meaning from index.json: same types
        /// (int vs float), same values, maps with the same keys in the same order, {"$bin": hex} = bytes.</summary>
        public static void SameTree(object meaning, object decoded, string path)
        {
            var mm = meaning as MsgMap;
            if (mm != null && mm.Count == 1 && mm.KeyAt(0) == "$bin")
            {
                var hex = (string)mm.ValueAt(0);
                var expected = new byte[hex.Length / 2];
                for (int i = 0; i < expected.Length; i++) expected[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
                Check(decoded is byte[], path + ": expected bin, got " + Show(decoded));
                Bytes(expected, (byte[])decoded, path);
                return;
            }
            if (mm != null)
            {
                var dm = decoded as MsgMap;
                Check(dm != null, path + ": expected a map, got " + Show(decoded));
                Equal(string.Join(",", mm.Select(kv => kv.Key)), string.Join(",", dm.Select(kv => kv.Key)), path + " keys (in order)");
                for (int i = 0; i < mm.Count; i++) SameTree(mm.ValueAt(i), dm.ValueAt(i), path + "." + mm.KeyAt(i));
                return;
            }
            var ml = meaning as List<object>;
            if (ml != null)
            {
                var dl = decoded as List<object>;
                Check(dl != null, path + ": expected an array, got " + Show(decoded));
                Equal(ml.Count, dl.Count, path + " length");
                for (int i = 0; i < ml.Count; i++) SameTree(ml[i], dl[i], path + "[" + i + "]");
                return;
            }
            if (meaning is double && decoded is double)
            {
                Check(BitConverter.DoubleToInt64Bits((double)meaning) == BitConverter.DoubleToInt64Bits((double)decoded),
                      path + ": expected " + Show(meaning) + ", got " + Show(decoded));
                return;
            }
            Equal(meaning, decoded, path);
        }
    }

    /// <summary>A stream that reads from a fixed input and records what is written.</summary>
    sealed class FakeStream : Stream
    {
        readonly MemoryStream _in;
        public readonly MemoryStream Written = new MemoryStream();
        public FakeStream(params byte[][] input) { _in = new MemoryStream(input.SelectMany(b => b).ToArray()); }
        public override int Read(byte[] buffer, int offset, int count) { return _in.Read(buffer, offset, Math.Min(count, 7)); } // short reads on purpose
        public override void Write(byte[] buffer, int offset, int count) { Written.Write(buffer, offset, count); }
        public override void Flush() { }
        public override bool CanRead { get { return true; } }
        public override bool CanWrite { get { return true; } }
        public override bool CanSeek { get { return false; } }
        public override long Length { get { throw new NotSupportedException(); } }
        public override long Position { get { throw new NotSupportedException(); } set { throw new NotSupportedException(); } }
        public override long Seek(long o, SeekOrigin s) { throw new NotSupportedException(); }
        public override void SetLength(long v) { throw new NotSupportedException(); }
    }
}
