"""The mesh with network interfaces at every node: what the SoC plugs DMA engines, HBM
channels and tensor cores into."""
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import NocConfig
from rtl.noc.mesh import NocMesh
from rtl.noc.ni import NocDepacketizer, NocPacketizer, beat_layout, ni_header_layout

__all__ = ["NocMemFabric"]


class NocMemFabric(wiring.Component):
    """Memory request/response fabric over :class:`rtl.noc.mesh.NocMesh`.

    Every node ``n`` has an initiator side (sends requests, receives responses) and a
    target side (receives requests, sends responses). Requests use VC 0, responses
    VC 1, with separate injection and ejection queues, so a target that stalls new
    requests until it can send its responses cannot deadlock the fabric, as long as
    initiators always accept responses (the usual end-point rule).

    Members (all arrays over nodes)
    -------------------------------
    i_req_hdr, i_req_data : In(stream)    initiator: request header (``node_*`` = target)
                                          and write data beats
    o_resp_hdr, o_resp_data : Out(stream) initiator: response header (``node_*`` = the
                                          target that answered) and read data beats
    o_mreq_hdr, o_mreq_data : Out(stream) target: request (``node_*`` = initiator)
    i_mresp_hdr, i_mresp_data : In(stream) target: response (``node_*`` = initiator)
    o_dropped : Out(32)                   requests to nodes outside the mesh, dropped

    Latency: the mesh's (``models.noc.zero_load_latency``); the NIs are combinational.

    ``shared=True`` builds the mesh with one shared router module
    (:class:`rtl.noc.mesh.NocMesh`'s ``shared``; write it with ``rtl.lib.verilog``).
    """

    def __init__(self, config: NocConfig, *, shared: bool = False):
        self._config = config
        self._shared = bool(shared)
        N = config.nodes
        hs, bs = stream.Signature(ni_header_layout(config)), stream.Signature(beat_layout(config))
        super().__init__({
            "i_req_hdr": In(hs).array(N), "i_req_data": In(bs).array(N),
            "o_resp_hdr": Out(hs).array(N), "o_resp_data": Out(bs).array(N),
            "o_mreq_hdr": Out(hs).array(N), "o_mreq_data": Out(bs).array(N),
            "i_mresp_hdr": In(hs).array(N), "i_mresp_data": In(bs).array(N),
            "o_dropped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.mesh = mesh = NocMesh(cfg, shared=self._shared)
        fl = wiring.flipped
        for n in range(cfg.nodes):
            for vc, (h_in, d_in, h_out, d_out) in [
                    (cfg.VC_REQ, (self.i_req_hdr[n], self.i_req_data[n], self.o_mreq_hdr[n],
                                  self.o_mreq_data[n])),
                    (cfg.VC_RESP, (self.i_mresp_hdr[n], self.i_mresp_data[n], self.o_resp_hdr[n],
                                   self.o_resp_data[n]))]:
                pk = m.submodules[f"pack{n}_{vc}"] = NocPacketizer(cfg)
                dp = m.submodules[f"depack{n}_{vc}"] = NocDepacketizer(cfg)
                wiring.connect(m, fl(h_in), pk.i_hdr)
                wiring.connect(m, fl(d_in), pk.i_data)
                wiring.connect(m, pk.o_flit, mesh.i_inject[n][vc])
                wiring.connect(m, mesh.o_eject[n][vc], dp.i_flit)
                wiring.connect(m, dp.o_hdr, fl(h_out))
                wiring.connect(m, dp.o_data, fl(d_out))
        m.d.comb += self.o_dropped.eq(mesh.o_dropped)
        return m
