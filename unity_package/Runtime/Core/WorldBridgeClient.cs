// The WorldBridge client: one background thread owns the connection and does everything that touches it
// (connect, handshake, inputs, credits, frames, pings, reconnects), so the game thread never blocks.
//
//   var client = new WorldBridgeClient(new ClientOptions { Address = "tcp://127.0.0.1:5557" });
//   client.Start();
//   client.SendInput(input);                      // any thread; newest wins, look deltas are summed
//   if (client.TryTakeFrame(header, ref pixels))  // newest frame, zero-copy buffer swap
//       ...upload pixels...
//   client.Dispose();                             // bye, close, join the thread
//
// Events are raised on the client thread. A game loop should poll TryDequeueEvent instead (main-thread safe).
//
// This file is the caller's side: lifecycle, state, and the queues the client thread drains.
// WorldBridgeClient.Session.cs is the client thread (sessions, handshake, credits, the protocol); it talks to
// the daemon only through an ITransport (ZmtpTransport.cs unless another is given). FrameSlot.cs is the
// latest-frame slot; ClientOptions.cs and ClientEvents.cs hold the public types around the client.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;

namespace WorldBridge.Core
{
    public sealed partial class WorldBridgeClient : IDisposable
    {
        public const string Version = "0.1.0";

        static readonly List<WorldBridgeClient> Live = new List<WorldBridgeClient>();
        static readonly double TickSeconds = 1.0 / Stopwatch.Frequency;

        /// <summary>The client's clock in seconds (monotonic). Inputs carry it; frames echo it for latency.</summary>
        public static double Now { get { return Stopwatch.GetTimestamp() * TickSeconds; } }

        readonly ClientOptions _opt;
        readonly ITransport _transport; // closed from Stop() only as a last resort when the thread does not finish
        readonly ManualResetEvent _stopEvent = new ManualResetEvent(false);
        Thread _thread;
        volatile bool _stopRequested;

        // ---- shared with callers (guarded by _lock)
        readonly object _lock = new object();
        InputState _pendingInput;
        double _pendingInputT;
        bool _hasPendingInput;
        readonly Queue<KeyValuePair<byte[], byte[]>> _control = new Queue<KeyValuePair<byte[], byte[]>>();
        readonly Queue<ClientEvent> _events = new Queue<ClientEvent>();
        const int MaxEvents = 256;
        // Inputs that carry a recorded frame go out one by one, in order (never merged: each pairs a frame
        // with its own controller state and pose); a few at most wait, so a slow link drops frames, not memory.
        struct Recorded { public InputState Input; public double T; public byte[] Pixels; }
        readonly Queue<Recorded> _recorded = new Queue<Recorded>();
        const int MaxRecordedWaiting = 4;
        volatile bool _recording;
        long _recordDropped;
        volatile string _prompt; // the newest Reset's prompt (1.2); null: ClientOptions.Prompt

        readonly MsgPackWriter _writer2 = new MsgPackWriter(128); // caller-side, used under _lock only

        // ---- the newest frame, between the client thread and TryTakeFrame
        readonly FrameSlot _slot = new FrameSlot();

        // (the client thread's own fields are in WorldBridgeClient.Session.cs)

        // ---- stats (guarded by _statsLock)
        readonly object _statsLock = new object();
        double _latencyMs = double.NaN, _latencyAvgMs = double.NaN, _rttMs = double.NaN;
        readonly double[] _arrivals = new double[32]; // frame arrival times, a ring
        int _arrivalIndex;

        volatile int _state = (int)ClientState.Idle;
        volatile Welcome _welcome;
        volatile ServerError _lastError;
        volatile string _lastDisconnect = "";
        long _framesReceived, _framesDropped, _framesTaken, _inputsSent, _sessions, _pings, _guidanceSent;

        /// <summary>Raised on the client thread.</summary>
        public event Action<Welcome> Connected;
        public event Action<string> Disconnected;
        public event Action<ServerError> ErrorReceived;
        /// <summary>A frame arrived (the header object is reused: copy what you keep). Take it with TryTakeFrame.</summary>
        public event Action<FrameHeader> FrameReceived;
        public event Action<ClientState> StateChanged;

        /// <summary>A client that connects over TCP to options.Address (a ZmtpTransport). Throws ArgumentException
        /// when the address is not tcp://HOST:PORT.</summary>
        public WorldBridgeClient(ClientOptions options) : this(options, null) { }

        /// <summary>A client that talks to the daemon through `transport` (null: a ZmtpTransport to
        /// options.Address). The client thread connects and closes it; give each client its own.</summary>
        public WorldBridgeClient(ClientOptions options, ITransport transport)
        {
            _opt = options ?? new ClientOptions();
            _transport = transport ?? new ZmtpTransport(_opt.Address);
        }

        public ClientOptions Options { get { return _opt; } }
        public ClientState State { get { return (ClientState)_state; } }
        /// <summary>The current session's welcome; null while not connected.</summary>
        public Welcome Welcome { get { return _welcome; } }
        public ServerError LastError { get { return _lastError; } }
        public string LastDisconnectReason { get { return _lastDisconnect; } }
        public bool IsConnected { get { return State == ClientState.Connected; } }
        /// <summary>Whether the client thread is running.</summary>
        public bool IsAlive { get { var t = _thread; return t != null && t.IsAlive; } }
        public Thread Thread { get { return _thread; } }
        /// <summary>Clients started and not yet stopped, in this process.</summary>
        public static int RunningCount { get { lock (Live) return Live.Count; } }
        /// <summary>ZMTP PINGs from the daemon answered with PONG, over all connections.</summary>
        public long PingsAnswered { get { return Interlocked.Read(ref _pings); } }

        public long FramesReceived { get { return Interlocked.Read(ref _framesReceived); } }
        /// <summary>Frames replaced in the slot before anyone took them.</summary>
        public long FramesDropped { get { return Interlocked.Read(ref _framesDropped); } }
        public long FramesTaken { get { return Interlocked.Read(ref _framesTaken); } }
        public long InputsSent { get { return Interlocked.Read(ref _inputsSent); } }
        /// <summary>Sessions opened so far (1 after the first welcome, +1 per reconnect).</summary>
        public long Sessions { get { return Interlocked.Read(ref _sessions); } }

        /// <summary>Frames received per second, over the last 32 frames or 2 seconds.</summary>
        public double Fps
        {
            get
            {
                lock (_statsLock)
                {
                    double now = Now, newest = 0, oldest = double.MaxValue;
                    int n = 0;
                    foreach (var t in _arrivals)
                    {
                        if (t <= 0 || now - t > 2.0) continue;
                        n++;
                        newest = Math.Max(newest, t);
                        oldest = Math.Min(oldest, t);
                    }
                    return n < 2 || newest <= oldest ? 0.0 : (n - 1) / (newest - oldest);
                }
            }
        }
        /// <summary>Input-to-frame latency of the newest frame, ms (NaN before a frame answered an input).</summary>
        public double LatencyMs { get { lock (_statsLock) return _latencyMs; } }
        /// <summary>Exponential moving average of LatencyMs.</summary>
        public double LatencyAvgMs { get { lock (_statsLock) return _latencyAvgMs; } }
        /// <summary>Round trip of the newest ping, ms.</summary>
        public double RoundTripMs { get { lock (_statsLock) return _rttMs; } }

        // ------------------------------------------------------------------------------------ lifecycle

        public void Start()
        {
            lock (_lock)
            {
                if (_thread != null) throw new InvalidOperationException("WorldBridgeClient was already started");
                _thread = new Thread(Run) { IsBackground = true, Name = "WorldBridge client " + _opt.Address };
            }
            lock (Live) Live.Add(this);
            _thread.Start();
        }

        /// <summary>Say bye, close the connection and join the thread (at most StopTimeoutMs, then the transport
        /// is closed under it). Safe to call twice and from any thread.</summary>
        public void Stop()
        {
            _stopRequested = true;
            _stopEvent.Set();
            var t = _thread;
            if (t != null && t != Thread.CurrentThread && !t.Join(_opt.StopTimeoutMs))
            {
                _transport.Close(); // unblocks a read or write stuck on a dead peer
                t.Join(1000);
            }
            lock (Live) Live.Remove(this);
            if (t == null) SetState(ClientState.Stopped);
        }

        public void Dispose() { Stop(); }

        /// <summary>Stop every client still running (an editor calls this before a domain reload).</summary>
        public static void StopAll()
        {
            WorldBridgeClient[] all;
            lock (Live) all = Live.ToArray();
            foreach (var c in all) c.Stop();
        }

        // --------------------------------------------------------------------------------- caller side

        /// <summary>Queue an input. Newest wins: move, buttons, pose and fov replace the pending ones, look
        /// deltas are added to them, so no mouse motion is lost. Never blocks on the network.
        /// input.Guidance (protocol 1.3, worlds with the "guidance" capability) is checked here (Guidance.Validate:
        /// ArgumentException naming the field, nothing queued) and then belongs to the client; a pending
        /// guidance that a newer input without one replaces is sent with the newer input (the daemon holds the
        /// newest guidance anyway), one with its own guidance replaces it.</summary>
        public void SendInput(InputState input)
        {
            if (input.Guidance != null) input.Guidance.Validate();
            lock (_lock)
            {
                if (_hasPendingInput)
                {
                    input.LookYaw += _pendingInput.LookYaw;
                    input.LookPitch += _pendingInput.LookPitch;
                    if (input.Guidance == null) input.Guidance = _pendingInput.Guidance;
                }
                _pendingInput = input;
                _pendingInputT = Now;
                _hasPendingInput = true;
            }
        }

        /// <summary>SendInput with `guidance` (protocol 1.3) as the input's Guidance; send the camera's pose with it.</summary>
        public void SendInput(InputState input, Guidance guidance)
        {
            input.Guidance = guidance;
            SendInput(input);
        }

        /// <summary>Inputs sent with a guidance map (protocol 1.3).</summary>
        public long GuidanceSent { get { return Interlocked.Read(ref _guidanceSent); } }

        /// <summary>True between the daemon's record_ok and record_done (protocol 1.1).</summary>
        public bool IsRecording { get { return _recording; } }
        /// <summary>Recorded frames left out because earlier ones were still waiting to be sent.</summary>
        public long RecordedFramesDropped { get { return Interlocked.Read(ref _recordDropped); } }

        /// <summary>Ask the daemon to record this session (record_ok or an error arrives as an event; the
        /// welcome's capabilities hold "record" when it can). The name is a wish the daemon sanitizes.</summary>
        public void StartRecording(string name = "")
        {
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteRecordStart(_writer2, name);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), null));
            }
        }

        /// <summary>Stop recording; record_done (path, frames) arrives as an event once the daemon wrote it.</summary>
        public void StopRecording()
        {
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteRecordStop(_writer2);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), null));
            }
        }

        /// <summary>While recording: send an input together with the frame the engine rendered for it (at the
        /// welcome's size, from input.Pose, which it must have). `pixels` is copied. Look deltas of inputs
        /// still pending are added to it. Returns false when the frame was left out because the link is behind
        /// (the input then goes as an ordinary one).</summary>
        public bool SendRecordedInput(InputState input, ImageSpec image, byte[] pixels, int length)
        {
            if (input.Guidance != null) input.Guidance.Validate();
            lock (_lock)
            {
                if (_hasPendingInput)
                {
                    input.LookYaw += _pendingInput.LookYaw;
                    input.LookPitch += _pendingInput.LookPitch;
                    if (input.Guidance == null) input.Guidance = _pendingInput.Guidance;
                    _hasPendingInput = false;
                }
                if (!_recording || !input.HasPose || _recorded.Count >= MaxRecordedWaiting)
                {
                    if (_recording) Interlocked.Increment(ref _recordDropped);
                    input.HasImage = false;
                    _pendingInput = input;
                    _pendingInputT = Now;
                    _hasPendingInput = true;
                    return false;
                }
            }
            var copy = new byte[length];
            Buffer.BlockCopy(pixels, 0, copy, 0, length);
            input.HasImage = true;
            input.Image = image;
            lock (_lock) _recorded.Enqueue(new Recorded { Input = input, T = Now, Pixels = copy });
            return true;
        }

        /// <summary>Start a new episode (reset_ok arrives as an event). `prompt` (protocol 1.2, worlds with the
        /// "prompt" capability): the scene in text from this episode on, and in the hello of a reconnect; null or
        /// empty keeps the session's. One over Protocol.MaxPromptBytes is refused (a 422 error event).</summary>
        public void Reset(long seed, CameraPose? pose = null, string prompt = null)
        {
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteReset(_writer2, seed, pose, null, prompt);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), null));
                RememberPrompt(prompt);
            }
        }

        /// <summary>Start a new episode from an image (worlds with the "start_image" capability).
        /// `pixels` is copied. `prompt` as in Reset(seed, pose, prompt).</summary>
        public void Reset(long seed, CameraPose? pose, ImageSpec image, byte[] pixels, int length, string prompt = null)
        {
            var copy = new byte[length];
            Buffer.BlockCopy(pixels, 0, copy, 0, length);
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteReset(_writer2, seed, pose, image, prompt);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), copy));
                RememberPrompt(prompt);
            }
        }

        /// <summary>The prompt the next hello sends (protocol 1.2): the newest Reset's, else ClientOptions.Prompt.</summary>
        public string Prompt { get { return _prompt ?? _opt.Prompt ?? ""; } }

        // A prompt the daemon refuses (too long) is not kept: a reconnect's hello would be refused too.
        void RememberPrompt(string prompt)
        {
            if (!string.IsNullOrEmpty(prompt) && Encoding.UTF8.GetByteCount(prompt) <= Protocol.MaxPromptBytes) _prompt = prompt;
        }

        /// <summary>Measure the round trip (RoundTripMs and a Pong event).</summary>
        public void Ping()
        {
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WritePing(_writer2, Now);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), null));
            }
        }

        /// <summary>Send a message exactly as given (a msgpack map, optional second frame). For keys a newer
        /// minor version adds, and for tests. Bypasses credit accounting.</summary>
        public void SendRaw(byte[] map, byte[] payload = null)
        {
            lock (_lock) _control.Enqueue(new KeyValuePair<byte[], byte[]>(map, payload));
        }

        /// <summary>Take the newest frame if one arrived since the last call. Its pixels are swapped into
        /// `pixels` (the array you pass in is recycled for a later frame, so pass the same variable each time:
        /// after warm-up nothing is allocated). For rgb8/rgba8 the array has exactly the frame's size;
        /// `length` is the number of valid bytes (jpeg).</summary>
        public bool TryTakeFrame(FrameHeader header, ref byte[] pixels, out int length)
        {
            if (!_slot.TryTake(header, ref pixels, out length)) return false;
            Interlocked.Increment(ref _framesTaken);
            return true;
        }

        /// <summary>Next event for the game thread, oldest first (at most 256 are kept).</summary>
        public bool TryDequeueEvent(out ClientEvent e)
        {
            lock (_lock)
            {
                if (_events.Count == 0) { e = default(ClientEvent); return false; }
                e = _events.Dequeue();
                return true;
            }
        }

        /// <summary>"tcp://HOST:PORT" (also "HOST:PORT", "[::1]:PORT").</summary>
        public static void ParseAddress(string address, out string host, out int port)
        {
            string a = (address ?? "").Trim();
            if (a.StartsWith("tcp://", StringComparison.Ordinal)) a = a.Substring(6);
            int colon = a.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(a.Substring(colon + 1), out port) || port <= 0 || port > 65535)
                throw new ArgumentException("address must look like tcp://127.0.0.1:5557, got \"" + address + "\"");
            host = a.Substring(0, colon).Trim('[', ']');
            if (host == "*" || host == "0.0.0.0") host = "127.0.0.1";
        }
    }
}
