"""Network-on-chip: flit format, credit links, routers, the mesh and network interfaces."""
