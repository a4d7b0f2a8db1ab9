// The real transport: a TcpClient per connection with a ZMTP 3.1 DEALER end over it (Zmtp.cs). ZMTP PINGs
// from the daemon are answered here, inside Receive, so WorldBridgeClient only ever sees protocol messages.
using System;
using System.Net.Sockets;
using System.Threading;

namespace WorldBridge.Core
{
    public sealed class ZmtpTransport : ITransport
    {
        readonly string _host;
        readonly int _port;
        TcpClient _tcp;       // swapped with Interlocked: Close may come from another thread
        ZmtpConnection _conn; // client thread only
        long _pingsBase;      // PINGs answered on connections before _conn

        /// <summary>`address`: "tcp://HOST:PORT" (see WorldBridgeClient.ParseAddress; throws ArgumentException).</summary>
        public ZmtpTransport(string address)
        {
            WorldBridgeClient.ParseAddress(address, out _host, out _port);
        }

        public void Connect(ClientOptions options, WaitHandle cancel)
        {
            if (_conn != null) _pingsBase += _conn.PingsAnswered;
            _conn = null;
            var tcp = new TcpClient();
            Interlocked.Exchange(ref _tcp, tcp);
            tcp.NoDelay = true;
            var ar = tcp.BeginConnect(_host, _port, null, null);
            int which = WaitHandle.WaitAny(new WaitHandle[] { ar.AsyncWaitHandle, cancel },
                                           TimeSpan.FromSeconds(options.ConnectTimeoutS));
            if (which != 0)
            {
                if (which == WaitHandle.WaitTimeout) throw new TimeoutException("connect to " + options.Address + " timed out");
                throw new OperationCanceledException("stopped");
            }
            tcp.EndConnect(ar);
            var stream = tcp.GetStream();
            stream.ReadTimeout = options.IoTimeoutMs;
            stream.WriteTimeout = options.IoTimeoutMs;
            _conn = new ZmtpConnection(stream, tcp.Client);
            _conn.Handshake("DEALER");
        }

        public bool Poll(int microseconds) { return _conn.Poll(microseconds); }

        public void Send(byte[] frame0, int len0, byte[] frame1, int off1, int len1)
        {
            _conn.Send(frame0, len0, frame1, off1, len1);
        }

        public bool Receive(ZmtpMessage message) { return _conn.Receive(message); }

        public long BytesReceived { get { return _conn.BytesReceived; } }

        public long PingsAnswered { get { return _pingsBase + (_conn != null ? _conn.PingsAnswered : 0); } }

        public void Close()
        {
            var tcp = Interlocked.Exchange(ref _tcp, null);
            if (tcp != null) tcp.Close(); // also unblocks a read or write stuck on a dead peer
        }
    }
}
