#!/usr/bin/python3
"""
RTSP server for simulated "天网" cameras: GStreamer gst-rtsp-server through
python3-gi (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good/bad).

It does not encode. ffmpeg encodes (testsrc2 with the camera id and a
millisecond wall clock burned in) and sends RTP over UDP to 127.0.0.1;
this server re-payloads that feed for every RTSP client. The media is shared,
so N clients cost one pipeline, and it is rebuilt for the next client after
the last one leaves (the UDP feed keeps running).

The encoders are started by this process (--exec) with PR_SET_PDEATHSIG, and
this process exits when its stdin closes: when the Node process that started
it dies, for any reason, nothing is left running.

usage: rtsp_server.py --port 8554 --mount /cam-1=5004:h264 [--exec '["ffmpeg", ...]']
Prints "READY <port>" on stdout once listening.
"""
import argparse
import ctypes
import json
import signal
import subprocess
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def factory_for(udp_port: int, codec: str) -> GstRtspServer.RTSPMediaFactory:
    h265 = codec == 'h265'
    enc, depay, parse, pay = (
        ('H265', 'rtph265depay', 'h265parse', 'rtph265pay') if h265 else ('H264', 'rtph264depay', 'h264parse', 'rtph264pay')
    )
    caps = f'application/x-rtp,media=video,encoding-name={enc},clock-rate=90000,payload=96'
    # h264parse config-interval=-1 puts SPS/PPS before every IDR, so a client
    # that joins mid-stream can decode from the next keyframe.
    launch = (
        f'( udpsrc port={udp_port} caps="{caps}" buffer-size=2097152 '
        f'! rtpjitterbuffer latency=20 ! {depay} ! {parse} config-interval=-1 '
        f'! {pay} name=pay0 pt=96 )'
    )
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(launch)
    f.set_shared(True)
    return f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--mount', action='append', default=[], help='/path=udpPort[:h264|h265]')
    ap.add_argument('--exec', action='append', default=[], dest='execs', help='JSON argv of a child (encoder)')
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for m in args.mount:
        path, rest = m.split('=', 1)
        port, _, codec = rest.partition(':')
        mounts.add_factory(path, factory_for(int(port), codec or 'h264'))
    if server.attach(None) == 0:
        print(f'ERROR cannot listen on {args.port}', flush=True)
        sys.exit(1)
    children = [
        subprocess.Popen(json.loads(a), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr, preexec_fn=die_with_parent)
        for a in args.execs
    ]
    loop = GLib.MainLoop()

    def quit_loop() -> bool:
        loop.quit()
        return False

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read1(4096):
                pass
        except Exception:
            pass
        GLib.idle_add(quit_loop)

    def watch_children() -> bool:
        # An encoder that dies takes the camera down: the hub must see a dead source.
        if any(c.poll() is not None for c in children):
            loop.quit()
            return False
        return True

    threading.Thread(target=watch_stdin, daemon=True).start()
    GLib.timeout_add(500, watch_children)
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, quit_loop)
    print(f'READY {server.get_bound_port()}', flush=True)
    loop.run()
    for c in children:
        c.kill()
    for c in children:
        c.wait()


if __name__ == '__main__':
    main()
