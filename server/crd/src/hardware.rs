//! [`Hardware`]: the hardware profile a device reports, stored in an
//! EdgeDevice's status and in the features of an EdgeDeviceSignedRequest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::device_config::Mount;

/// What the device agent discovered about its machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    /// Boot firmware details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<Boot>,
    /// The processor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Block storage devices.
    pub disks: Vec<Disk>,
    /// Graphics processors.
    pub gpus: Vec<Gpu>,
    /// Block and character devices under `/dev`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_devices: Option<Vec<HostDevice>>,
    /// The machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Network interfaces.
    pub interfaces: Vec<Interface>,
    /// Installed memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Filesystems mounted on the machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// Maker and model of the machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_vendor: Option<SystemVendor>,
}

/// How the machine booted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Boot {
    /// `bios` or `uefi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_boot_mode: Option<String>,
    /// Interface used for PXE boot, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pxe_interface: Option<String>,
}

/// The processor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// Architecture as `uname -m` prints it, e.g. `aarch64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Number of logical CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Feature flags from `/proc/cpuinfo`.
    pub flags: Vec<String>,
    /// Clock frequency in MHz, formatted as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// Model name from `/proc/cpuinfo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

/// A block storage device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// Whether the disk holds a boot loader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootable: Option<bool>,
    /// `/dev/disk/by-id` name (stable across reboots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_id: Option<String>,
    /// `/dev/disk/by-path` name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_path: Option<String>,
    /// `HDD`, `SSD`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive_type: Option<String>,
    /// SCSI host:channel:target:lun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hctl: Option<String>,
    /// Unique id: `by_id` when known, else `by_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Measured I/O performance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_perf: Option<IoPerf>,
    /// Whether the disk looks like installation media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_installation_media: Option<bool>,
    /// Model string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Kernel name, e.g. `sda`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Device path, e.g. `/dev/sda`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Capacity in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// SMART data as reported by the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart: Option<String>,
    /// Vendor string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// World Wide Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
}

/// Disk I/O performance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IoPerf {
    /// 99th percentile `fsync` latency, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_duration: Option<i64>,
}

/// A graphics processor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// PCI address, e.g. `0000:00:02.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// PCI device id, e.g. `3ea0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Product name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Vendor name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// PCI vendor id, e.g. `8086`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
}

/// A device node under `/dev`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostDevice {
    /// `block` or `character`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Owning group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<i32>,
    /// Major number (device class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i32>,
    /// Minor number (instance within the class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i32>,
    /// Owning user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<i32>,
    /// Path of the node, e.g. `/dev/loop0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A network interface.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Firmware-assigned name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biosdevname: Option<String>,
    /// DHCP client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Interface flags, e.g. `up`, `broadcast`.
    pub flags: Vec<String>,
    /// Whether a link is detected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_carrier: Option<bool>,
    /// IPv4 addresses in CIDR notation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_addresses: Option<Vec<String>>,
    /// IPv6 addresses in CIDR notation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_addresses: Option<Vec<String>>,
    /// Hardware address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Maximum transmission unit, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
    /// Kernel name, e.g. `eth0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Product string of the adapter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Link speed in Mbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<i64>,
    /// Vendor string of the adapter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

/// Installed memory.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Physically installed, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_bytes: Option<i64>,
    /// Usable by the OS, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usable_bytes: Option<i64>,
}

/// Maker and model of the machine (DMI data, or the device tree on boards).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemVendor {
    /// Manufacturer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Product name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Whether the machine appears to be virtual.
    #[serde(rename = "virtual", skip_serializing_if = "Option::is_none")]
    pub is_virtual: Option<bool>,
}
