// Inspector for WorldModelView: its settings, the connection's state while playing, a clear message when no
// daemon answers at the address, and a button that starts one.
using UnityEditor;
using UnityEngine;
using WorldBridge.Core;

namespace WorldBridge.Editor
{
    [CustomEditor(typeof(WorldModelView))]
    public class WorldModelViewEditor : UnityEditor.Editor
    {
        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var view = (WorldModelView)target;
            if (view.sendGuidance && view.GetComponent<GuidanceCapture>() == null)
            {
                EditorGUILayout.HelpBox("Send Guidance adds a Guidance Capture at play time. Add it now to choose its scale, " +
                    "depth format and colours, and so that player builds include its shader (else add " + GuidanceCapture.ShaderName +
                    " to Always Included Shaders).", MessageType.Info);
                if (GUILayout.Button("Add Guidance Capture")) Undo.AddComponent<GuidanceCapture>(view.gameObject);
            }

            EditorGUILayout.Space();
            EditorGUILayout.LabelField("Daemon", EditorStyles.boldLabel);
            if (Application.isPlaying && view.Client != null) DrawLiveState(view);
            else DrawReachability(view.address, view.world);

            EditorGUILayout.BeginHorizontal();
            GUI.enabled = !LocalDaemon.IsRunning;
            if (GUILayout.Button("Start local daemon"))
            {
                LocalDaemon.Start(view.world, view.address);
                DaemonWindow.Open(view.world, view.address);
            }
            GUI.enabled = true;
            if (GUILayout.Button("Daemon window")) DaemonWindow.Open(view.world, view.address);
            EditorGUILayout.EndHorizontal();
        }

        public override bool RequiresConstantRepaint() { return Application.isPlaying; }

        static void DrawLiveState(WorldModelView view)
        {
            var client = view.Client;
            var welcome = view.Welcome;
            var error = view.LastError;
            string errorLine = error != null ? "\nLast error: " + error : "";
            switch (view.State)
            {
                case ClientState.Connected:
                    EditorGUILayout.HelpBox(string.Format(
                        "Connected to {0}: world {1}, session {2}, {3}x{4} {5}\n{6:0.0} fps received, {7:0.0} shown, latency {8:0.0} ms{9}",
                        view.address, welcome != null ? welcome.World : "?", welcome != null ? welcome.Session : "?",
                        welcome != null ? welcome.Width : 0, welcome != null ? welcome.Height : 0,
                        welcome != null ? Protocol.Name(welcome.Format) : "?", view.ReceiveFps, view.DisplayFps,
                        view.LatencyMs, errorLine), MessageType.Info);
                    var capture = view.GuidanceCapture;
                    if (capture != null && capture.IsConfigured)
                        EditorGUILayout.HelpBox(string.Format("Guidance {0}x{1}: {2} captured, {3} completed, {4} dropped, {5} failed, {6} skipped; {7} sent",
                            capture.Width, capture.Height, capture.Captured, capture.Completed, capture.Dropped, capture.Failed,
                            capture.Skipped, client.GuidanceSent), MessageType.None);
                    break;
                case ClientState.Failed:
                    EditorGUILayout.HelpBox("Gave up: " + (error != null ? error.ToString() : client.LastDisconnectReason)
                        + "\nFix the token or update the package/daemon so their protocol versions match.", MessageType.Error);
                    break;
                default:
                    EditorGUILayout.HelpBox("The WorldBridge daemon is not reachable at " + view.address + " ("
                        + client.LastDisconnectReason + "); retrying.\nStart it with the button below or in a terminal:\n"
                        + "worldbridge serve --world " + view.world + " --bind " + view.address + errorLine, MessageType.Warning);
                    break;
            }
        }

        /// <summary>A HelpBox saying whether a daemon listens at `address` (checked in the background).</summary>
        public static void DrawReachability(string address, string world)
        {
            string detail;
            switch (DaemonProbe.Check(address, out detail))
            {
                case Reachability.Reachable:
                    EditorGUILayout.HelpBox("A daemon is listening at " + address + ".", MessageType.Info);
                    break;
                case Reachability.Unreachable:
                    EditorGUILayout.HelpBox("The WorldBridge daemon is not reachable at " + address
                        + (detail.Length > 0 ? " (" + detail + ")" : "") + ".\nStart it with \"Start local daemon\" or in a terminal:\n"
                        + "worldbridge serve --world " + world + " --bind " + address, MessageType.Warning);
                    break;
                case Reachability.BadAddress:
                    EditorGUILayout.HelpBox(detail, MessageType.Error);
                    break;
                default:
                    EditorGUILayout.HelpBox("Checking " + address + " ...", MessageType.None);
                    break;
            }
        }
    }
}
