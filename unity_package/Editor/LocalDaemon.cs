// Runs `worldbridge serve` as a child process of the editor and keeps its log for the Daemon window.
// The daemon survives domain reloads (entering play mode reloads scripts): its process id is kept in
// SessionState so it can still be stopped; only the output that arrives during a reload is lost.
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using UnityEditor;
using WorldBridge.Core;

namespace WorldBridge.Editor
{
    [InitializeOnLoad]
    public static class LocalDaemon
    {
        const string PidKey = "WorldBridge.LocalDaemon.Pid";
        const string LogKey = "WorldBridge.LocalDaemon.Log";
        const int MaxLines = 2000;

        public const string CommandPref = "WorldBridge.DaemonCommand";
        public const string ArgumentsPref = "WorldBridge.DaemonArguments";
        public const string WorkingDirPref = "WorldBridge.DaemonWorkingDirectory";
        public const string DefaultArguments = "serve --world {world} --bind {address}";

        static Process _process;
        static readonly List<string> Lines = new List<string>();
        static int _version;

        static LocalDaemon()
        {
            string saved = SessionState.GetString(LogKey, "");
            if (saved.Length > 0) Lines.AddRange(saved.Split('\n'));
            int pid = SessionState.GetInt(PidKey, 0);
            if (pid != 0)
            {
                try
                {
                    var p = Process.GetProcessById(pid);
                    if (!p.HasExited)
                    {
                        _process = p;
                        Append("(scripts reloaded: the daemon keeps running; its further output is not captured)");
                    }
                }
                catch (ArgumentException) { SessionState.EraseInt(PidKey); } // it has exited
                catch (InvalidOperationException) { SessionState.EraseInt(PidKey); }
            }
            AssemblyReloadEvents.beforeAssemblyReload += BeforeReload;
            EditorApplication.quitting += Stop;
        }

        /// <summary>The executable: `worldbridge` on PATH, or e.g. /path/to/repo/.venv/bin/worldbridge.</summary>
        public static string Command
        {
            get { return EditorPrefs.GetString(CommandPref, "worldbridge"); }
            set { EditorPrefs.SetString(CommandPref, value); }
        }

        /// <summary>Arguments; {world} and {address} are replaced.</summary>
        public static string Arguments
        {
            get { return EditorPrefs.GetString(ArgumentsPref, DefaultArguments); }
            set { EditorPrefs.SetString(ArgumentsPref, value); }
        }

        public static string WorkingDirectory
        {
            get { return EditorPrefs.GetString(WorkingDirPref, ""); }
            set { EditorPrefs.SetString(WorkingDirPref, value); }
        }

        public static bool IsRunning
        {
            get
            {
                try { return _process != null && !_process.HasExited; }
                catch (InvalidOperationException) { return false; }
            }
        }

        /// <summary>Changes whenever a log line arrives (windows repaint on change).</summary>
        public static int Version { get { lock (Lines) return _version; } }

        public static string LogText
        {
            get { lock (Lines) return string.Join("\n", Lines.ToArray()); }
        }

        public static void ClearLog()
        {
            lock (Lines) { Lines.Clear(); _version++; }
        }

        public static void Start(string world, string address)
        {
            if (IsRunning) { Append("a daemon started from the editor is already running"); return; }
            string args = Arguments.Replace("{world}", Quote(world)).Replace("{address}", Quote(address));
            var info = new ProcessStartInfo(Command, args)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                CreateNoWindow = true,
            };
            if (!string.IsNullOrEmpty(WorkingDirectory)) info.WorkingDirectory = WorkingDirectory;
            info.EnvironmentVariables["PYTHONUNBUFFERED"] = "1"; // log lines arrive as they are written
            Append("$ " + Command + " " + args);
            try
            {
                var p = new Process { StartInfo = info, EnableRaisingEvents = true };
                p.OutputDataReceived += (s, e) => { if (e.Data != null) Append(e.Data); };
                p.ErrorDataReceived += (s, e) => { if (e.Data != null) Append(e.Data); };
                p.Exited += (s, e) => Append("(daemon exited with code " + SafeExitCode(p) + ")");
                p.Start();
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                _process = p;
                SessionState.SetInt(PidKey, p.Id);
            }
            catch (Exception e) when (e is Win32Exception || e is FileNotFoundException || e is InvalidOperationException)
            {
                Append("could not start \"" + Command + "\": " + e.Message);
                Append("Set the full path of the worldbridge executable in Window > WorldBridge > Daemon "
                       + "(for example <repo>/.venv/bin/worldbridge, or <repo>\\.venv\\Scripts\\worldbridge.exe on Windows).");
            }
        }

        public static void Stop()
        {
            if (!IsRunning) { _process = null; SessionState.EraseInt(PidKey); return; }
            try
            {
                Append("stopping the daemon (pid " + _process.Id + ")");
                _process.Kill();
                _process.WaitForExit(3000);
            }
            catch (Exception e) { Append("could not stop the daemon: " + e.Message); }
            _process = null;
            SessionState.EraseInt(PidKey);
        }

        public static void Append(string line)
        {
            lock (Lines)
            {
                Lines.Add(line);
                if (Lines.Count > MaxLines) Lines.RemoveRange(0, Lines.Count - MaxLines);
                _version++;
            }
        }

        static void BeforeReload()
        {
            WorldBridgeClient.StopAll(); // no client thread may outlive the scripts that own it
            lock (Lines)
            {
                int from = Math.Max(0, Lines.Count - 300);
                SessionState.SetString(LogKey, string.Join("\n", Lines.GetRange(from, Lines.Count - from).ToArray()));
            }
        }

        static string SafeExitCode(Process p)
        {
            try { return p.ExitCode.ToString(); } catch (InvalidOperationException) { return "?"; }
        }

        static string Quote(string s)
        {
            s = s ?? "";
            return s.IndexOf(' ') >= 0 ? "\"" + s + "\"" : s;
        }
    }

    /// <summary>Stops every WorldBridge client when play mode ends, so no socket thread outlives it.</summary>
    [InitializeOnLoad]
    static class ClientLifecycle
    {
        static ClientLifecycle()
        {
            EditorApplication.playModeStateChanged += state =>
            {
                if (state == PlayModeStateChange.ExitingPlayMode) WorldBridgeClient.StopAll();
            };
        }
    }
}
