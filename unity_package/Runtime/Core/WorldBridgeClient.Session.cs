// WorldBridgeClient's own thread: connect through the ITransport, hello/welcome, then one loop per session that
// sends what the caller queued, keeps credits outstanding, reads and dispatches the daemon's messages, and
// reconnects with backoff when the connection ends. Everything here runs on that thread; what it shares with
// callers is declared in WorldBridgeClient.cs. The transport answers its own keep-alives (ZMTP PINGs) inside
// Receive, so only protocol messages reach this file.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace WorldBridge.Core
{
    public sealed partial class WorldBridgeClient
    {
        // ---- thread-owned
        readonly ZmtpMessage _rx = new ZmtpMessage();
        readonly FrameHeader _rxHeader = new FrameHeader();
        readonly MsgPackReader _reader = new MsgPackReader();
        readonly MsgPackWriter _writer = new MsgPackWriter(512);
        int _outstanding;
        long _seq;
        double _lastSend, _lastReceive, _lastHelloT = -1, _rehelloAt;
        long _lastBytes;
        bool _byeSent, _welcomed;

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
                        _transport.Connect(_opt, _stopEvent);
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
                        _transport.Close();
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
                _transport.Close();
                _welcome = null;
                if (State != ClientState.Failed) SetState(ClientState.Stopped);
                lock (Live) Live.Remove(this);
            }
        }

        // One connection's sessions, until the connection ends (bye, an error that needs a new connection) or Stop.
        // Sets _welcomed once a welcome arrived.
        void Session()
        {
            _byeSent = false;
            SendHello();
            double deadline = Now + _opt.HandshakeTimeoutS;
            _lastReceive = Now;
            _lastBytes = _transport.BytesReceived;
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
                if (_transport.Poll(_opt.PollMicroseconds))
                {
                    for (int i = 0; i < 16; i++)
                    {
                        bool message = _transport.Receive(_rx);
                        Interlocked.Exchange(ref _pings, _transport.PingsAnswered);
                        if (message && !Handle()) return;
                        if (!_transport.Poll(0)) break;
                    }
                }
                double now = Now;
                if (_transport.BytesReceived != _lastBytes) { _lastBytes = _transport.BytesReceived; _lastReceive = now; }
                else if (now - _lastReceive > _opt.SilenceTimeoutS)
                    throw new TimeoutException("nothing from the daemon for " + _opt.SilenceTimeoutS + " s");
            }
        }

        void SendHello()
        {
            var h = _opt.Hello;
            h.Credits = Math.Max(0, _opt.Credits);
            h.Prompt = Prompt;
            _writer.Clear();
            Protocol.WriteHello(_writer, h);
            Send(_writer);
            _outstanding = h.Credits;
            _lastHelloT = Now;
            _rehelloAt = 0;
            _welcome = null;
        }

        void Send(MsgPackWriter w) { _transport.Send(w.Buffer, w.Length, null, 0, 0); _lastSend = Now; }

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
                if (m.Value != null) _transport.Send(m.Key, m.Key.Length, m.Value, 0, m.Value.Length);
                else _transport.Send(m.Key, m.Key.Length, null, 0, 0);
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
                _transport.Send(_writer.Buffer, _writer.Length, r.Pixels, 0, r.Pixels.Length);
                _lastSend = Now;
                Interlocked.Increment(ref _inputsSent);
                if (r.Input.Guidance != null) Interlocked.Increment(ref _guidanceSent);
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
                var lim = _welcome;
                if (input.Guidance != null && lim != null && _writer.Length > lim.Limits.MaxMessageBytes)
                {
                    // the daemon would refuse it all (413): send the input without its guidance, and say why
                    Report(new ServerError(0, "client_guidance", "an input with " + input.Guidance.Width + "x" + input.Guidance.Height +
                        " guidance is " + _writer.Length + " bytes, over max_message_bytes " + lim.Limits.MaxMessageBytes + ": sent without it (use a smaller scale)", "input"));
                    input.Guidance = null;
                    _writer.Clear();
                    Protocol.WriteInput(_writer, _seq, t, ref input);
                }
                Send(_writer);
                Interlocked.Increment(ref _inputsSent);
                if (input.Guidance != null) Interlocked.Increment(ref _guidanceSent);
            }

            var w = _welcome;
            int target = Math.Min(_opt.Credits, w != null ? w.Limits.MaxCredits : 16);
            int pending = _outstanding;
            if (_opt.PaceToConsumer)
            {
                pending += _slot.SinceTake; // received but not yet consumed (taken or replaced)
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
                _pendingInput.Guidance = null; // sized for the old session's world; the engine sends a new one
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
            if (_slot.Put(h, _rx, 1)) Interlocked.Increment(ref _framesDropped);
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
                    if (!_transport.Poll(10000) || !_transport.Receive(_rx)) continue;
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
    }
}
