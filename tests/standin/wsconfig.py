"""The WinRM service configuration resource (http://schemas.microsoft.com/wbem/wsman/1/config).

Owns: answering Transfer Get on the config resource the way Windows does (pypsrp's
update_max_envelope_size reads MaxEnvelopeSizekb from it; corpus
test_wsman_update_envelope_size_*.yml). Must not: change any behaviour of the host.
"""

import wsman

RESOURCE_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"


class ConfigResource:
    def __init__(self, max_envelope_kb, allow_unencrypted, basic, negotiate):
        self.max_envelope_kb = max_envelope_kb
        self.allow_unencrypted = "true" if allow_unencrypted else "false"
        self.basic = "true" if basic else "false"
        self.negotiate = "true" if negotiate else "false"

    def get(self, req, ctx):
        body = (
            '<cfg:Config xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config">'
            f"<cfg:MaxEnvelopeSizekb>{self.max_envelope_kb}</cfg:MaxEnvelopeSizekb>"
            "<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>"
            "<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests>"
            "<cfg:Client><cfg:NetworkDelayms>5000</cfg:NetworkDelayms><cfg:URLPrefix>wsman</cfg:URLPrefix>"
            "<cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic>"
            "<cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>"
            "<cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth>"
            "<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>"
            "<cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client>"
            "<cfg:Service><cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
            "</cfg:RootSDDL><cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>"
            "<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>"
            "<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>"
            "<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>"
            f"<cfg:AllowUnencrypted>{self.allow_unencrypted}</cfg:AllowUnencrypted>"
            f"<cfg:Auth><cfg:Basic>{self.basic}</cfg:Basic><cfg:Kerberos>false</cfg:Kerberos>"
            f"<cfg:Negotiate>{self.negotiate}</cfg:Negotiate><cfg:Certificate>false</cfg:Certificate>"
            "<cfg:CredSSP>false</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth>"
            "<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>"
            "<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>"
            "<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>"
            "<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>"
            "<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess>"
            "</cfg:Service><cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess>"
            "<cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers>"
            "<cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime>"
            "<cfg:MaxProcessesPerShell>2147483647</cfg:MaxProcessesPerShell>"
            "<cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB>"
            "<cfg:MaxShellsPerUser>2147483647</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>"
        )
        return wsman.ACTION_GET + "Response", body
