// What a WorldBridgeClient reports: its state, and the events it queues for the game thread.
namespace WorldBridge.Core
{
    public enum ClientState { Idle, Connecting, Connected, Reconnecting, Failed, Stopped }

    public enum ClientEventKind { Connected, Disconnected, Error, ResetOk, Pong, RecordOk, RecordDone }

    /// <summary>Something that happened on the client thread, for the game thread to handle (TryDequeueEvent).</summary>
    public struct ClientEvent
    {
        public ClientEventKind Kind;
        public Welcome Welcome;    // Connected
        public ServerError Error;  // Error
        public string Reason;      // Disconnected
        public ResetOk ResetOk;
        public Pong Pong;
        public double RoundTripMs; // Pong
        public RecordOk RecordOk;
        public RecordDone RecordDone;
    }
}
