// Is anything listening at a daemon address? Checked off the main thread (a TCP connect with a short
// timeout, at most every two seconds per address) so the inspector never stalls.
using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using WorldBridge.Core;

namespace WorldBridge.Editor
{
    public enum Reachability { Unknown, Reachable, Unreachable, BadAddress }

    public static class DaemonProbe
    {
        sealed class Entry
        {
            public Reachability State = Reachability.Unknown;
            public DateTime Checked = DateTime.MinValue;
            public bool Busy;
            public string Detail = "";
        }

        static readonly Dictionary<string, Entry> Entries = new Dictionary<string, Entry>();

        /// <summary>The latest known answer for `address`; starts a new check when the answer is old.</summary>
        public static Reachability Check(string address, out string detail)
        {
            Entry e;
            lock (Entries)
            {
                if (!Entries.TryGetValue(address ?? "", out e)) Entries[address ?? ""] = e = new Entry();
                detail = e.Detail;
                if (e.Busy || (DateTime.UtcNow - e.Checked).TotalSeconds < 2) return e.State;
                e.Busy = true;
            }
            ThreadPool.QueueUserWorkItem(_ => Probe(address, e));
            return e.State;
        }

        static void Probe(string address, Entry e)
        {
            Reachability state;
            string detail = "";
            try
            {
                string host;
                int port;
                WorldBridgeClient.ParseAddress(address, out host, out port);
                using (var tcp = new TcpClient())
                {
                    var ar = tcp.BeginConnect(host, port, null, null);
                    bool done = ar.AsyncWaitHandle.WaitOne(500);
                    if (done) tcp.EndConnect(ar);
                    state = done ? Reachability.Reachable : Reachability.Unreachable;
                    if (!done) detail = "no answer within 0.5 s";
                }
            }
            catch (ArgumentException ex) { state = Reachability.BadAddress; detail = ex.Message; }
            catch (SocketException ex) { state = Reachability.Unreachable; detail = ex.SocketErrorCode.ToString(); }
            catch (Exception ex) { state = Reachability.Unreachable; detail = ex.Message; }
            lock (Entries)
            {
                e.State = state;
                e.Detail = detail;
                e.Checked = DateTime.UtcNow;
                e.Busy = false;
            }
        }
    }
}
