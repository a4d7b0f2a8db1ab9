// Stand-ins for the NUnit 3 members the EditMode tests use. Stricter than NUnit on purpose: AreEqual compares
// with object.Equals, so an int compared with a long fails here although NUnit would accept it.
using System;
using System.Collections;
using System.Linq;

namespace NUnit.Framework
{
    [AttributeUsage(AttributeTargets.Method)]
    public class TestAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public class TestFixtureAttribute : Attribute { }

    public class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public class Assert
    {
        public static void AreEqual(object expected, object actual)
        {
            if (!Equals(expected, actual)) throw new AssertionException("expected " + expected + " (" + Type(expected) + "), got " + actual + " (" + Type(actual) + ")");
        }

        public static void AreEqual(double expected, double actual, double delta)
        {
            if (Math.Abs(expected - actual) > delta) throw new AssertionException("expected " + expected + " +- " + delta + ", got " + actual);
        }

        public static void AreNotEqual(object expected, object actual)
        {
            if (Equals(expected, actual)) throw new AssertionException("expected anything but " + expected);
        }

        public static void IsTrue(bool condition) { if (!condition) throw new AssertionException("expected true"); }
        public static void IsFalse(bool condition) { if (condition) throw new AssertionException("expected false"); }

        static string Type(object o) { return o == null ? "null" : o.GetType().Name; }
    }

    public class CollectionAssert
    {
        public static void AreEqual(IEnumerable expected, IEnumerable actual)
        {
            var e = expected.Cast<object>().ToArray();
            var a = actual.Cast<object>().ToArray();
            if (e.Length != a.Length) throw new AssertionException("expected " + e.Length + " items, got " + a.Length);
            for (int i = 0; i < e.Length; i++)
                if (!Equals(e[i], a[i])) throw new AssertionException("item " + i + ": expected " + e[i] + ", got " + a[i]);
        }
    }
}
