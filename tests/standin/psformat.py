"""Objects of the emulated PowerShell and the text Windows prints for them.

Owns: PSObj / EnumVal (a .NET-like object: type names, properties, ToString), the
Out-String / console formatting (service and process tables, list view, dates), the `whoami`
text and `ipconfig` output of the stand-in host.
Must not: run commands (pscmds does) or know about PSRP serialization (psrp does).
"""

import datetime


class PSObj:
    """A .NET-like object: type names, ordered properties, its ToString text."""

    def __init__(self, type_names, props, to_string=None, adapted=True):
        self.type_names = list(type_names)
        self.props = dict(props)
        self.to_string = to_string if to_string is not None else self.type_names[0]
        self.adapted = adapted

    def __str__(self):
        return self.to_string


class EnumVal:
    """A .NET enum value (serialized by Windows as its ToString plus the I32)."""

    def __init__(self, type_name, name, value):
        self.type_names = [type_name, "System.Enum", "System.ValueType", "System.Object"]
        self.name = name
        self.value = value

    def __str__(self):
        return self.name



def display_user(user, hostname):
    """`whoami` text: domain\\user in lower case, the host name standing in for a local account."""
    if not user:
        return "nt authority\\anonymous logon"
    if "\\" in user:
        domain, name = user.split("\\", 1)
    elif "@" in user:
        name, domain = user.split("@", 1)
        domain = domain.split(".")[0]
    else:
        domain, name = hostname, user
    return f"{(domain or hostname).lower()}\\{name.lower()}"


def _fmt_value(v):
    if isinstance(v, datetime.datetime):
        return format_date(v)
    if isinstance(v, bool):
        return "True" if v else "False"
    if v is None:
        return ""
    return str(v)


def format_date(d):
    hour = d.hour % 12 or 12
    ampm = "AM" if d.hour < 12 else "PM"
    return f"{d.strftime('%A')}, {d.strftime('%B')} {d.day}, {d.year} {hour}:{d.minute:02d}:{d.second:02d} {ampm}"


def _table(headers, rows, widths=None):
    widths = widths or [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = [""]
    out.append(" ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    out.append(" ".join(("-" * len(h)).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        out.append(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    out.append("")
    out.append("")
    return out


def format_objects(objs):
    """Out-String text for a list of objects (CRLF-free, "\\n" joined, trailing newline)."""
    lines = []
    i = 0
    while i < len(objs):
        obj = objs[i]
        if isinstance(obj, PSObj) and obj.type_names[0] == "System.ServiceProcess.ServiceController":
            group = []
            while i < len(objs) and isinstance(objs[i], PSObj) and objs[i].type_names[0] == obj.type_names[0]:
                group.append(objs[i])
                i += 1
            rows = [[str(o.props["Status"]), o.props["Name"], o.props["DisplayName"]] for o in group]
            lines.extend(_table(["Status", "Name", "DisplayName"], rows, [8, 18, 40]))
            continue
        if isinstance(obj, PSObj) and obj.type_names[0] == "System.Diagnostics.Process":
            group = []
            while i < len(objs) and isinstance(objs[i], PSObj) and objs[i].type_names[0] == obj.type_names[0]:
                group.append(objs[i])
                i += 1
            rows = [[str(o.props["Handles"]).rjust(7), str(o.props["NPM"] // 1024).rjust(6),
                     str(o.props["PM"] // 1024).rjust(10), str(o.props["WS"] // 1024).rjust(13),
                     f"{o.props['CPU']:.2f}".rjust(10), str(o.props["Id"]).rjust(6), str(o.props["SI"]).rjust(3),
                     o.props["ProcessName"]] for o in group]
            lines.extend(_table(["Handles", "NPM(K)", "PM(K)", "WS(K)", "CPU(s)", "Id", "SI", "ProcessName"],
                                rows, [7, 6, 10, 13, 10, 6, 3, 11]))
            continue
        if isinstance(obj, PSObj):
            lines.append("")
            width = max(len(k) for k in obj.props) if obj.props else 0
            for k, v in obj.props.items():
                lines.append(f"{k.ljust(width)} : {_fmt_value(v)}")
            lines.append("")
            lines.append("")
        elif isinstance(obj, datetime.datetime):
            lines.extend(["", format_date(obj), "", ""])
        else:
            lines.append(_fmt_value(obj))
        i += 1
    return "\n".join(lines) + "\n"


def ipconfig_text(all_=False, hostname="STANDIN"):
    """ipconfig / ipconfig /all as a Windows Server 2019 VM prints it (CRLF line ends)."""
    if not all_:
        lines = [
            "",
            "Windows IP Configuration",
            "",
            "",
            "Ethernet adapter Ethernet:",
            "",
            "   Connection-specific DNS Suffix  . : corp.example",
            "   Link-local IPv6 Address . . . . . : fe80::3d1c:8a4e:1f02:9b7e%6",
            "   IPv4 Address. . . . . . . . . . . : 192.0.2.15",
            "   Subnet Mask . . . . . . . . . . . : 255.255.255.0",
            "   Default Gateway . . . . . . . . . : 192.0.2.1",
        ]
    else:
        lines = [
            "",
            "Windows IP Configuration",
            "",
            f"   Host Name . . . . . . . . . . . . : {hostname}",
            "   Primary Dns Suffix  . . . . . . . : corp.example",
            "   Node Type . . . . . . . . . . . . : Hybrid",
            "   IP Routing Enabled. . . . . . . . : No",
            "   WINS Proxy Enabled. . . . . . . . : No",
            "   DNS Suffix Search List. . . . . . : corp.example",
            "",
            "Ethernet adapter Ethernet:",
            "",
            "   Connection-specific DNS Suffix  . : corp.example",
            "   Description . . . . . . . . . . . : Microsoft Hyper-V Network Adapter",
            "   Physical Address. . . . . . . . . : 00-15-5D-01-02-0F",
            "   DHCP Enabled. . . . . . . . . . . : Yes",
            "   Autoconfiguration Enabled . . . . : Yes",
            "   Link-local IPv6 Address . . . . . : fe80::3d1c:8a4e:1f02:9b7e%6(Preferred) ",
            "   IPv4 Address. . . . . . . . . . . : 192.0.2.15(Preferred) ",
            "   Subnet Mask . . . . . . . . . . . : 255.255.255.0",
            "   Lease Obtained. . . . . . . . . . : Monday, November 23, 2026 1:02:11 AM",
            "   Lease Expires . . . . . . . . . . : Tuesday, December 1, 2026 1:02:11 AM",
            "   Default Gateway . . . . . . . . . : 192.0.2.1",
            "   DHCP Server . . . . . . . . . . . : 192.0.2.1",
            "   DHCPv6 IAID . . . . . . . . . . . : 100668765",
            "   DHCPv6 Client DUID. . . . . . . . : 00-01-00-01-2A-3B-4C-5D-00-15-5D-01-02-0F",
            "   DNS Servers . . . . . . . . . . . : 192.0.2.10",
            "                                       192.0.2.11",
            "   NetBIOS over Tcpip. . . . . . . . : Enabled",
        ]
    return "\r\n".join(lines) + "\r\n"
