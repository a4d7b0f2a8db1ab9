// Window > WorldBridge > Daemon: start and stop a local `worldbridge serve`, see whether it is reachable, and
// read its log.
using UnityEditor;
using UnityEngine;

namespace WorldBridge.Editor
{
    public class DaemonWindow : EditorWindow
    {
        const string WorldPref = "WorldBridge.DaemonWorld";
        const string AddressPref = "WorldBridge.DaemonAddress";

        Vector2 _scroll;
        int _seenVersion = -1;

        [MenuItem("Window/WorldBridge/Daemon")]
        public static void Open()
        {
            var w = GetWindow<DaemonWindow>();
            w.titleContent = new GUIContent("WorldBridge Daemon");
            w.Show();
        }

        /// <summary>Open the window with the world and address of a WorldModelView.</summary>
        public static void Open(string world, string address)
        {
            EditorPrefs.SetString(WorldPref, world);
            EditorPrefs.SetString(AddressPref, address);
            Open();
        }

        void OnEnable() { EditorApplication.update += RepaintOnNewLog; }
        void OnDisable() { EditorApplication.update -= RepaintOnNewLog; }

        void RepaintOnNewLog()
        {
            if (LocalDaemon.Version == _seenVersion) return;
            _seenVersion = LocalDaemon.Version;
            _scroll.y = float.MaxValue; // follow the newest line
            Repaint();
        }

        void OnGUI()
        {
            string world = EditorPrefs.GetString(WorldPref, "maze");
            string address = EditorPrefs.GetString(AddressPref, "tcp://127.0.0.1:5557");

            EditorGUILayout.LabelField("Local daemon", EditorStyles.boldLabel);
            LocalDaemon.Command = EditorGUILayout.TextField("Command", LocalDaemon.Command);
            LocalDaemon.Arguments = EditorGUILayout.TextField("Arguments", LocalDaemon.Arguments);
            LocalDaemon.WorkingDirectory = EditorGUILayout.TextField("Working directory", LocalDaemon.WorkingDirectory);
            world = EditorGUILayout.TextField("World", world);
            address = EditorGUILayout.TextField("Address", address);
            EditorPrefs.SetString(WorldPref, world);
            EditorPrefs.SetString(AddressPref, address);

            WorldModelViewEditor.DrawReachability(address, world);

            EditorGUILayout.BeginHorizontal();
            bool running = LocalDaemon.IsRunning;
            GUI.enabled = !running;
            if (GUILayout.Button("Start local daemon")) LocalDaemon.Start(world, address);
            GUI.enabled = running;
            if (GUILayout.Button("Stop")) LocalDaemon.Stop();
            GUI.enabled = true;
            if (GUILayout.Button("Clear log")) LocalDaemon.ClearLog();
            EditorGUILayout.EndHorizontal();

            _scroll = EditorGUILayout.BeginScrollView(_scroll, GUILayout.ExpandHeight(true));
            GUILayout.Label(LocalDaemon.LogText, EditorStyles.wordWrappedLabel);
            EditorGUILayout.EndScrollView();
        }
    }
}
