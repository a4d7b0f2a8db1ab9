// The WorldBridge client: one background thread owns the socket and does everything that touches it
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
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace WorldBridge.Core
{
    public enum ClientState { Idle, Connecting, Connected, Reconnecting, Failed, Stopped }

    public sealed class ClientOptions
    {
        /// <summary>tcp://HOST:PORT of the daemon.</summary>
        public string Address = "tcp://127.0.0.1:5557";
        /// <summary>What to ask for; Credits is overwritten with the Credits option below.</summary>
        public HelloRequest Hello = new HelloRequest();
        /// <summary>Frame credits kept outstanding (1-3 is right; more only adds latency).</summary>
        public int Credits = 2;
        /// <summary>Count the frames received since the last TryTakeFrame against the credits, so the daemon
        /// makes at most Credits frames per frame taken: it idles while nobody takes frames.</summary>
        public bool PaceToConsumer = false;
        public double ConnectTimeoutS = 3, HandshakeTimeoutS = 10;
        public double ReconnectMinDelayS = 0.25, ReconnectMaxDelayS = 4;
        /// <summary>Send a ping when nothing was sent for this long (keeps the session from expiring).</summary>
        public double KeepAliveS = 5;
        /// <summary>Reconnect when nothing arrived for this long (the daemon PINGs every 10 s).</summary>
        public double SilenceTimeoutS = 30;
        /// <summary>How long a blocking read or write in the middle of a message may take.</summary>
        public int IoTimeoutMs = 5000;
        public int StopTimeoutMs = 2000;
        /// <summary>Where the thread sleeps waiting for data; also the worst extra delay before an input is sent.</summary>
        public int PollMicroseconds = 1000;
        /// <summary>Diagnostics (called on the client thread).</summary>
        public Action<string> Log;
    }

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

    public sealed class WorldBridgeClient : IDisposable
    {
        public const string Version = "0.1.0";

        static readonly List<WorldBridgeClient> Live = new List<WorldBridgeClient>();
        static readonly double TickSeconds = 1.0 / Stopwatch.Frequency;

        /// <summary>The client's clock in seconds (monotonic). Inputs carry it; frames echo it for latency.</summary>
        public static double Now { get { return Stopwatch.GetTimestamp() * TickSeconds; } }

        readonly ClientOptions _opt;
        readonly string _host;
        readonly int _port;
        readonly ManualResetEvent _stopEvent = new ManualResetEvent(false);
        Thread _thread;
        volatile bool _stopRequested;
        volatile TcpClient _tcp; // closed from Stop() only as a last resort when the thread does not finish

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

        // ---- latest-frame slot (guarded by _slotLock)
        readonly object _slotLock = new object();
        readonly FrameHeader _slotHeader = new FrameHeader();
        byte[] _slotPixels;
        int _slotLength;
        bool _slotFull;
        int _sinceTake; // frames received since the last TryTakeFrame

        // ---- thread-owned
        ZmtpConnection _conn;
        readonly ZmtpMessage _rx = new ZmtpMessage();
        readonly FrameHeader _rxHeader = new FrameHeader();
        readonly MsgPackReader _reader = new MsgPackReader();
        readonly MsgPackWriter _writer = new MsgPackWriter(512);
        int _outstanding;
        long _seq;
        double _lastSend, _lastReceive, _lastHelloT = -1, _rehelloAt;
        long _lastBytes;
        bool _byeSent, _welcomed;

        // ---- stats (guarded by _statsLock)
        readonly object _statsLock = new object();
        double _latencyMs = double.NaN, _latencyAvgMs = double.NaN, _rttMs = double.NaN;
        readonly double[] _arrivals = new double[32]; // frame arrival times, a ring
        int _arrivalIndex;

        volatile int _state = (int)ClientState.Idle;
        volatile Welcome _welcome;
        volatile ServerError _lastError;
        volatile string _lastDisconnect = "";
        long _framesReceived, _framesDropped, _framesTaken, _inputsSent, _sessions, _pings, _pingsBase;

        /// <summary>Raised on the client thread.</summary>
        public event Action<Welcome> Connected;
        public event Action<string> Disconnected;
        public event Action<ServerError> ErrorReceived;
        /// <summary>A frame arrived (the header object is reused: copy what you keep). Take it with TryTakeFrame.</summary>
        public event Action<FrameHeader> FrameReceived;
        public event Action<ClientState> StateChanged;

        public WorldBridgeClient(ClientOptions options)
        {
            _opt = options ?? new ClientOptions();
            ParseAddress(_opt.Address, out _host, out _port);
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

        /// <summary>Say bye, close the socket and join the thread (at most StopTimeoutMs, then the socket is
        /// closed under it). Safe to call twice and from any thread.</summary>
        public void Stop()
        {
            _stopRequested = true;
            _stopEvent.Set();
            var t = _thread;
            if (t != null && t != Thread.CurrentThread && !t.Join(_opt.StopTimeoutMs))
            {
                var tcp = _tcp;
                if (tcp != null) tcp.Close(); // unblocks a read or write stuck on a dead peer
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
        /// deltas are added to them, so no mouse motion is lost. Never blocks on the network.</summary>
        public void SendInput(InputState input)
        {
            lock (_lock)
            {
                if (_hasPendingInput)
                {
                    input.LookYaw += _pendingInput.LookYaw;
                    input.LookPitch += _pendingInput.LookPitch;
                }
                _pendingInput = input;
                _pendingInputT = Now;
                _hasPendingInput = true;
            }
        }

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
            lock (_lock)
            {
                if (_hasPendingInput)
                {
                    input.LookYaw += _pendingInput.LookYaw;
                    input.LookPitch += _pendingInput.LookPitch;
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

        /// <summary>Start a new episode (reset_ok arrives as an event).</summary>
        public void Reset(long seed, CameraPose? pose = null)
        {
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteReset(_writer2, seed, pose, null);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), null));
            }
        }

        readonly MsgPackWriter _writer2 = new MsgPackWriter(128); // caller-side, used under _lock only

        /// <summary>Start a new episode from an image (worlds with the "start_image" capability).
        /// `pixels` is copied.</summary>
        public void Reset(long seed, CameraPose? pose, ImageSpec image, byte[] pixels, int length)
        {
            var copy = new byte[length];
            Buffer.BlockCopy(pixels, 0, copy, 0, length);
            lock (_lock)
            {
                _writer2.Clear();
                Protocol.WriteReset(_writer2, seed, pose, image);
                _control.Enqueue(new KeyValuePair<byte[], byte[]>(_writer2.ToArray(), copy));
            }
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
            lock (_slotLock)
            {
                length = 0;
                if (!_slotFull) return false;
                header.CopyFrom(_slotHeader);
                var mine = _slotPixels;
                _slotPixels = pixels;
                pixels = mine;
                length = _slotLength;
                _slotFull = false;
                _sinceTake = 0;
            }
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

        // ---------------------------------------------------------------------------------- client thread

        void Run()
        {
            double delay = _opt.ReconnectMinDelayS;
            try
            {
                while (!_stopRequested)
                {
                    SetState(Sessions == 0 ? ClientState.Connecting : ClientState.Reconnecting);
                    _welcomed = false;
                    string reason;
                    try
                    {
                        Connect();
                        Session();
                        reason = _stopRequested ? "stopped" : _lastDisconnect;
                    }
                    catch (Exception e)
                    {
                        if (e is ThreadAbortException) throw;
                        reason = Describe(e);
                    }
                    finally
                    {
                        CloseSocket();
                    }
                    if (_welcomed) { Disconnect(reason); delay = _opt.ReconnectMinDelayS; }
                    else _lastDisconnect = reason;
                    if (_stopRequested || State == ClientState.Failed) break;
                    Log("reconnecting in " + delay.ToString("0.00") + " s (" + reason + ")");
                    if (_stopEvent.WaitOne(TimeSpan.FromSeconds(delay))) break;
                    delay = Math.Min(_opt.ReconnectMaxDelayS, delay * 2);
                }
            }
            catch (ThreadAbortException)
            {
                // domain unload: nothing left to do
            }
            catch (Exception e)
            {
                Log("client thread failed: " + e);
            }
            finally
            {
                CloseSocket();
                _welcome = null;
                if (State != ClientState.Failed) SetState(ClientState.Stopped);
                lock (Live) Live.Remove(this);
            }
        }

        void Connect()
        {
            var tcp = new TcpClient();
            _tcp = tcp;
            tcp.NoDelay = true;
            var ar = tcp.BeginConnect(_host, _port, null, null);
            int which = WaitHandle.WaitAny(new WaitHandle[] { ar.AsyncWaitHandle, _stopEvent },
                                           TimeSpan.FromSeconds(_opt.ConnectTimeoutS));
            if (which != 0)
            {
                if (which == WaitHandle.WaitTimeout) throw new TimeoutException("connect to " + _opt.Address + " timed out");
                throw new OperationCanceledException("stopped");
            }
            tcp.EndConnect(ar);
            var stream = tcp.GetStream();
            stream.ReadTimeout = _opt.IoTimeoutMs;
            stream.WriteTimeout = _opt.IoTimeoutMs;
            _conn = new ZmtpConnection(stream, tcp.Client);
            _conn.Handshake("DEALER");
        }

        // One connection's sessions, until the connection ends (bye, an error that needs a new connection) or Stop.
        // Sets _welcomed once a welcome arrived.
        void Session()
        {
            _byeSent = false;
            SendHello();
            double deadline = Now + _opt.HandshakeTimeoutS;
            _lastReceive = Now;
            _lastBytes = _conn.BytesReceived;
            while (true)
            {
                if (_stopRequested)
                {
                    if (_welcomed) SayBye();
                    return;
                }
                if (_rehelloAt > 0 && Now >= _rehelloAt) SendHello();
                if (!_welcomed && Now > deadline) throw new TimeoutException("no welcome within " + _opt.HandshakeTimeoutS + " s");
                if (_welcome != null) SendPending();
                if (_conn.Poll(_opt.PollMicroseconds))
                {
                    for (int i = 0; i < 16; i++)
                    {
                        bool message = _conn.Receive(_rx);
                        Interlocked.Exchange(ref _pings, _pingsBase + _conn.PingsAnswered);
                        if (message && !Handle()) return;
                        if (!_conn.Poll(0)) break;
                    }
                }
                double now = Now;
                if (_conn.BytesReceived != _lastBytes) { _lastBytes = _conn.BytesReceived; _lastReceive = now; }
                else if (now - _lastReceive > _opt.SilenceTimeoutS)
                    throw new TimeoutException("nothing from the daemon for " + _opt.SilenceTimeoutS + " s");
            }
        }

        void SendHello()
        {
            var h = _opt.Hello;
            h.Credits = Math.Max(0, _opt.Credits);
            _writer.Clear();
            Protocol.WriteHello(_writer, h);
            Send(_writer);
            _outstanding = h.Credits;
            _lastHelloT = Now;
            _rehelloAt = 0;
            _welcome = null;
        }

        void Send(MsgPackWriter w) { _conn.Send(w.Buffer, w.Length); _lastSend = Now; }

        void SendPending()
        {
            // control messages (reset, ping, raw) in the order they were queued
            while (true)
            {
                KeyValuePair<byte[], byte[]> m;
                lock (_lock)
                {
                    if (_control.Count == 0) break;
                    m = _control.Dequeue();
                }
                if (m.Value != null) _conn.Send(m.Key, m.Key.Length, m.Value, 0, m.Value.Length);
                else _conn.Send(m.Key, m.Key.Length);
                _lastSend = Now;
            }

            // inputs with recorded frames, in order, before the newest plain input
            while (true)
            {
                Recorded r;
                lock (_lock)
                {
                    if (_recorded.Count == 0) break;
                    r = _recorded.Dequeue();
                }
                _writer.Clear();
                Protocol.WriteInput(_writer, ++_seq, r.T, ref r.Input);
                _conn.Send(_writer.Buffer, _writer.Length, r.Pixels, 0, r.Pixels.Length);
                _lastSend = Now;
                Interlocked.Increment(ref _inputsSent);
            }

            InputState input = default(InputState);
            double t = 0;
            bool send = false;
            lock (_lock)
            {
                if (_hasPendingInput)
                {
                    input = _pendingInput;
                    t = _pendingInputT;
                    _hasPendingInput = false;
                    send = true;
                }
            }
            if (send)
            {
                _writer.Clear();
                Protocol.WriteInput(_writer, ++_seq, t, ref input);
                Send(_writer);
                Interlocked.Increment(ref _inputsSent);
            }

            var w = _welcome;
            int target = Math.Min(_opt.Credits, w != null ? w.Limits.MaxCredits : 16);
            int pending = _outstanding;
            if (_opt.PaceToConsumer)
            {
                lock (_slotLock) pending += _sinceTake; // received but not yet consumed (taken or replaced)
            }
            if (pending < target)
            {
                _writer.Clear();
                Protocol.WriteCredit(_writer, target - pending);
                Send(_writer);
                _outstanding += target - pending;
            }

            if (Now - _lastSend > _opt.KeepAliveS)
            {
                _writer.Clear();
                Protocol.WritePing(_writer, Now);
                Send(_writer);
            }
        }

        // Handle the message in _rx. Returns false when the session is over (bye, or an error that ends it
        // and needs a new connection).
        bool Handle()
        {
            byte[] map = _rx.Frames[0];
            int len = _rx.Lengths[0];
            MessageKind kind;
            try
            {
                kind = Protocol.ReadKind(_reader, map, len);
                switch (kind)
                {
                    case MessageKind.Frame:
                        Protocol.ReadFrame(_reader, map, len, _rxHeader);
                        OnFrame();
                        return true;
                    case MessageKind.Welcome:
                        OnWelcome(Protocol.ReadWelcome(map, len));
                        return true;
                    case MessageKind.Error:
                        return OnError(Protocol.ReadError(map, len));
                    case MessageKind.Pong:
                    {
                        var p = Protocol.ReadPong(map, len);
                        double rtt = (Now - p.T) * 1e3;
                        lock (_statsLock) _rttMs = rtt;
                        Enqueue(new ClientEvent { Kind = ClientEventKind.Pong, Pong = p, RoundTripMs = rtt });
                        return true;
                    }
                    case MessageKind.ResetOk:
                        Enqueue(new ClientEvent { Kind = ClientEventKind.ResetOk, ResetOk = Protocol.ReadResetOk(map, len) });
                        return true;
                    case MessageKind.RecordOk:
                        _recording = true;
                        Enqueue(new ClientEvent { Kind = ClientEventKind.RecordOk, RecordOk = Protocol.ReadRecordOk(map, len) });
                        return true;
                    case MessageKind.RecordDone:
                        _recording = false;
                        Enqueue(new ClientEvent { Kind = ClientEventKind.RecordDone, RecordDone = Protocol.ReadRecordDone(map, len) });
                        return true;
                    case MessageKind.Bye:
                        _lastDisconnect = _byeSent ? "bye" : "the daemon closed the session (bye)";
                        return false;
                    default:
                        Log("ignoring a message of unknown type " + Protocol.ReadTypeName(map, len));
                        return true;
                }
            }
            catch (MsgPackException e)
            {
                // A daemon bug or a newer major version: report it, keep the connection.
                Report(new ServerError(0, "client_decode", "could not decode a message from the daemon: " + e.Message));
                return true;
            }
        }

        void OnWelcome(Welcome w)
        {
            if (w.Major != Protocol.Major)
            {
                Report(new ServerError(426, "version", "daemon speaks protocol " + w.Major + "." + w.Minor + ", client " + Protocol.Major + "." + Protocol.Minor));
                SetState(ClientState.Failed);
                throw new IOException("incompatible protocol version");
            }
            lock (_lock)
            {
                _pendingInput.LookYaw = 0; _pendingInput.LookPitch = 0; // no jump from motion made while away
                _recorded.Clear(); // a new session records nothing until asked
            }
            _recording = false;
            _welcome = w;
            _welcomed = true;
            Interlocked.Increment(ref _sessions);
            Log("connected: session " + w.Session + ", world " + w.World + ", " + w.Width + "x" + w.Height + " " + Protocol.Name(w.Format));
            SetState(ClientState.Connected);
            Enqueue(new ClientEvent { Kind = ClientEventKind.Connected, Welcome = w });
            Raise(Connected, w);
        }

        void OnFrame()
        {
            var h = _rxHeader;
            _outstanding = Math.Max(0, _outstanding - 1);
            int expected = h.ExpectedPayloadBytes;
            if (_rx.Count != 2 || (expected >= 0 && _rx.Lengths[1] != expected))
            {
                Report(new ServerError(0, "client_decode", "frame " + h.Seq + " has " + (_rx.Count == 2 ? _rx.Lengths[1] + " pixel bytes, expected " + expected : "no pixel frame")));
                return;
            }
            double now = Now;
            lock (_slotLock)
            {
                if (_slotFull) Interlocked.Increment(ref _framesDropped);
                _rx.SwapFrame(1, ref _slotPixels);
                _slotLength = _rx.Lengths[1];
                _slotHeader.CopyFrom(h);
                _slotFull = true;
                _sinceTake++;
            }
            Interlocked.Increment(ref _framesReceived);
            lock (_statsLock)
            {
                if (h.InputSeq >= 0)
                {
                    _latencyMs = (now - h.InputT) * 1e3;
                    _latencyAvgMs = double.IsNaN(_latencyAvgMs) ? _latencyMs : 0.9 * _latencyAvgMs + 0.1 * _latencyMs;
                }
                _arrivals[_arrivalIndex] = now;
                _arrivalIndex = (_arrivalIndex + 1) % _arrivals.Length;
            }
            Raise(FrameReceived, h);
        }

        bool OnError(ServerError e)
        {
            Report(e);
            if (e.EndsSession && e.Code != 408 && e.Code != 409) _lastDisconnect = "error " + e;
            if (e.IsPermanent)
            {
                SetState(ClientState.Failed); // a wrong token or protocol version: retrying cannot help
                return false;
            }
            if (e.Code == 408 || e.Code == 409)
            {
                // the session expired or is gone: start a new one on this connection (at most once a second)
                _rehelloAt = Math.Max(Now, _lastHelloT + 1.0);
                return true;
            }
            if (e.Code == 503) return false; // full or shutting down: reconnect with backoff
            return true;                      // 400, 404, 413, 422, 500: the session goes on
        }

        void SayBye()
        {
            try
            {
                _writer.Clear();
                Protocol.WriteBye(_writer);
                Send(_writer);
                _byeSent = true;
                // Read until the reply so the close is orderly (closing with unread data would reset the
                // connection and could lose the bye on its way).
                double deadline = Now + 0.3;
                while (Now < deadline)
                {
                    if (!_conn.Poll(10000) || !_conn.Receive(_rx)) continue;
                    if (Protocol.ReadKind(_reader, _rx.Frames[0], _rx.Lengths[0]) == MessageKind.Bye) break;
                }
            }
            catch (Exception e)
            {
                Log("bye: " + Describe(e));
            }
        }

        void Disconnect(string reason)
        {
            _welcome = null;
            _lastDisconnect = reason;
            Log("disconnected: " + reason);
            Enqueue(new ClientEvent { Kind = ClientEventKind.Disconnected, Reason = reason });
            Raise(Disconnected, reason);
        }

        void CloseSocket()
        {
            var tcp = _tcp;
            _tcp = null;
            if (_conn != null) _pingsBase += _conn.PingsAnswered;
            _conn = null;
            if (tcp != null) tcp.Close();
        }

        void Report(ServerError e)
        {
            _lastError = e;
            Log("error " + e);
            Enqueue(new ClientEvent { Kind = ClientEventKind.Error, Error = e });
            Raise(ErrorReceived, e);
        }

        void Enqueue(ClientEvent e)
        {
            lock (_lock)
            {
                if (_events.Count >= MaxEvents) _events.Dequeue();
                _events.Enqueue(e);
            }
        }

        void SetState(ClientState s)
        {
            if (_state == (int)s) return;
            _state = (int)s;
            Raise(StateChanged, s);
        }

        void Raise<T>(Action<T> handler, T arg)
        {
            if (handler == null) return;
            try { handler(arg); }
            catch (Exception e) { Log("event handler threw: " + e); }
        }

        void Log(string message)
        {
            var log = _opt.Log;
            if (log == null) return;
            try { log(message); } catch { }
        }

        static string Describe(Exception e)
        {
            if (e is EndOfStreamException) return "connection closed by the daemon";
            var se = e as SocketException ?? e.InnerException as SocketException;
            if (se != null) return "socket: " + se.SocketErrorCode + " (" + se.Message + ")";
            return e.GetType().Name + ": " + e.Message;
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
