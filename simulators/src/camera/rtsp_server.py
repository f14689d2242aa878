#!/usr/bin/python3
"""
Minimal RTSP server for simulated cameras (GStreamer gst-rtsp-server through
python3-gi). It does not encode: ffmpeg encodes (testsrc2 + burned-in clock)
and sends RTP over UDP to 127.0.0.1:<rtp-port>; this server re-payloads it
for every RTSP client (shared media, so N clients cost one pipeline).

usage: rtsp_server.py --port 8554 --mount /cam-1=5004:h264 [--mount ...]
Prints "READY <port>" on stdout once listening. Exits when stdin closes, so
it never outlives the Node process that started it.
"""
import argparse
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def factory_for(udp_port: int, codec: str) -> GstRtspServer.RTSPMediaFactory:
    enc = 'H265' if codec == 'h265' else 'H264'
    depay = 'rtph265depay' if codec == 'h265' else 'rtph264depay'
    parse = 'h265parse' if codec == 'h265' else 'h264parse'
    pay = 'rtph265pay' if codec == 'h265' else 'rtph264pay'
    caps = f'application/x-rtp,media=video,encoding-name={enc},clock-rate=90000,payload=96'
    launch = (
        f'( udpsrc port={udp_port} caps="{caps}" buffer-size=2097152 '
        f'! rtpjitterbuffer latency=50 ! {depay} ! {parse} config-interval=-1 '
        f'! {pay} name=pay0 pt=96 )'
    )
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(launch)
    f.set_shared(True)
    # A shared live source: tear the pipeline down when the last client leaves,
    # a new client builds it again from the (still running) UDP feed.
    f.set_suspend_mode(GstRtspServer.RTSPSuspendMode.NONE)
    return f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--mount', action='append', default=[], help='/path=udpPort[:h264|h265]')
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for m in args.mount:
        path, rest = m.split('=', 1)
        port, _, codec = rest.partition(':')
        mounts.add_factory(path, factory_for(int(port), codec or 'h264'))
    if server.attach(None) == 0:
        print(f'ERROR cannot listen on {args.port}', flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        GLib.idle_add(loop.quit)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f'READY {server.get_bound_port()}', flush=True)
    loop.run()


if __name__ == '__main__':
    main()
