// Runs the package's EditMode tests (Tests/*.cs) outside Unity on the NUnit stand-in: every public method
// marked [Test] of every public class, one fresh instance each. Prints PASS/FAIL and "N passed, N failed".
using System;
using System.Linq;
using System.Reflection;
using NUnit.Framework;

static class RunNUnitTests
{
    static int Main()
    {
        int passed = 0, failed = 0;
        var tests = typeof(RunNUnitTests).Assembly.GetTypes()
            .Where(t => t.IsPublic && t.IsClass)
            .SelectMany(t => t.GetMethods().Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0))
            .OrderBy(m => m.DeclaringType.FullName).ThenBy(m => m.MetadataToken);
        foreach (var m in tests)
        {
            try
            {
                m.Invoke(Activator.CreateInstance(m.DeclaringType), null);
                passed++;
                Console.WriteLine("PASS " + m.DeclaringType.Name + "." + m.Name);
            }
            catch (TargetInvocationException e)
            {
                failed++;
                Console.WriteLine("FAIL " + m.DeclaringType.Name + "." + m.Name + ": " + e.InnerException);
            }
        }
        Console.WriteLine("{0} passed, {1} failed", passed, failed);
        return failed == 0 && passed > 0 ? 0 : 1;
    }
}
