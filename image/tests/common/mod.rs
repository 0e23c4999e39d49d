//! Synthetic Raspberry-Pi-OS-shaped images and inputs for the integration tests: an MBR
//! (mbrman) with p1 FAT32 (fatfs) holding cmdline.txt, config.txt and kernels, and p2 an
//! ext4-typed run of zeros.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flotta_image::board::Userland;
use flotta_image::window::Window;
use flotta_image::{Enrolment, WriteOptions};
use mbrman::{CHS, MBR, MBRPartitionEntry};

pub const CMDLINE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=abcd1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n";
pub const CONFIG_BOOKWORM: &str = "# For more options and information see\n# http://rptl.io/configtxt\ndtparam=audio=on\n# Additional overlays and parameters are documented\n# /boot/firmware/overlays/README\ncamera_auto_detect=1\n";
pub const USER_DATA: &str = "#cloud-config\n# This is the Imager-less default.\nusers:\n- name: pi\n  groups: sudo\n  shell: /bin/bash\nruncmd:\n- [echo, seeded]\n";

const P1_START: u64 = 2048;
const P1_SECTORS: u64 = 40 * 2048; // 40 MiB: enough clusters for FAT32 at 512 B/cluster
const P2_SECTORS: u64 = 4 * 2048;

/// How to build an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub userland: Userland,
    pub cloud_init: bool,
    /// MBR type of partition 1.
    pub p1_type: u8,
    /// Whether p1 is formatted at all.
    pub format_p1: bool,
    pub cmdline: Option<String>,
    /// Extra boot-partition files.
    pub extra: Vec<(String, Vec<u8>)>,
    /// Whether the FAT32 free cluster count is filled in, as mkfs.fat does (fatfs's
    /// format_volume leaves it "unknown").
    pub free_count_known: bool,
}

impl ImageSpec {
    pub fn bookworm(userland: Userland) -> Self {
        ImageSpec {
            userland,
            cloud_init: false,
            p1_type: 0x0c,
            format_p1: true,
            cmdline: Some(CMDLINE.into()),
            extra: vec![],
            free_count_known: true,
        }
    }
    pub fn trixie(userland: Userland) -> Self {
        ImageSpec {
            cloud_init: true,
            ..Self::bookworm(userland)
        }
    }

    pub fn build(&self, path: &Path) -> PathBuf {
        let total = (P1_START + P1_SECTORS + P2_SECTORS) * 512;
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.set_len(total).unwrap();
        let mut mbr = MBR::new_from(&mut f, 512, [0x34, 0x12, 0xcd, 0xab]).unwrap();
        mbr[1] = MBRPartitionEntry {
            boot: 0,
            first_chs: CHS::empty(),
            sys: self.p1_type,
            last_chs: CHS::empty(),
            starting_lba: P1_START as u32,
            sectors: P1_SECTORS as u32,
        };
        mbr[2] = MBRPartitionEntry {
            boot: 0,
            first_chs: CHS::empty(),
            sys: 0x83,
            last_chs: CHS::empty(),
            starting_lba: (P1_START + P1_SECTORS) as u32,
            sectors: P2_SECTORS as u32,
        };
        mbr.write_into(&mut f).unwrap();
        if self.format_p1 {
            let opts = fatfs::FormatVolumeOptions::new()
                .fat_type(fatfs::FatType::Fat32)
                .bytes_per_cluster(512)
                .volume_id(0x1234_5678)
                .volume_label(*b"bootfs     ");
            fatfs::format_volume(Window::new(&mut f, P1_START * 512, P1_SECTORS * 512), opts)
                .unwrap();
            let fs = fatfs::FileSystem::new(
                Window::new(&mut f, P1_START * 512, P1_SECTORS * 512),
                fatfs::FsOptions::new(),
            )
            .unwrap();
            {
                let root = fs.root_dir();
                let put = |name: &str, data: &[u8]| {
                    let mut file = root.create_file(name).unwrap();
                    file.truncate().unwrap();
                    file.write_all(data).unwrap();
                };
                if let Some(c) = &self.cmdline {
                    put("cmdline.txt", c.as_bytes());
                }
                put("config.txt", CONFIG_BOOKWORM.as_bytes());
                put("bootcode.bin", b"bootcode");
                match self.userland {
                    Userland::Armhf => {
                        for k in [
                            "kernel.img",
                            "kernel7.img",
                            "kernel7l.img",
                            "kernel8.img",
                            "kernel_2712.img",
                        ] {
                            put(k, k.as_bytes());
                        }
                    }
                    Userland::Arm64 => {
                        for k in ["kernel8.img", "kernel_2712.img"] {
                            put(k, k.as_bytes());
                        }
                    }
                }
                if self.cloud_init {
                    put("user-data", USER_DATA.as_bytes());
                    put("meta-data", b"instance-id: rpios-image\n");
                    put("network-config", b"network:\n  version: 2\n");
                }
                for (n, d) in &self.extra {
                    put(n, d);
                }
            }
            if self.free_count_known {
                fs.stats().unwrap();
            }
            fs.unmount().unwrap();
        }
        f.sync_all().unwrap();
        path.to_path_buf()
    }
}

/// Give the boot partition of `image` the `flotta/` directory older flotta-image versions
/// wrote (created by fatfs, as they did: a directory fsck.fat finds broken), with `files`.
pub fn add_legacy_dir(image: &Path, files: &[&str]) {
    let mut f = File::options().read(true).write(true).open(image).unwrap();
    let fs = fatfs::FileSystem::new(
        Window::new(&mut f, P1_START * 512, P1_SECTORS * 512),
        fatfs::FsOptions::new(),
    )
    .unwrap();
    {
        let dir = fs.root_dir().create_dir("flotta").unwrap();
        for name in files {
            let mut file = dir.create_file(name).unwrap();
            file.write_all(name.as_bytes()).unwrap();
        }
    }
    fs.unmount().unwrap();
}

/// The test inputs (agent binary, PEMs, ssh key) in `dir`.
pub struct Inputs {
    pub dir: PathBuf,
    pub agent: PathBuf,
    pub agent_bytes: Vec<u8>,
}

pub fn agent_bytes(userland: Userland, pad: usize) -> Vec<u8> {
    let mut b = flotta_image::elf::synthetic_agent(userland);
    b.extend((0..pad).map(|i| (i % 251) as u8));
    b
}

pub fn inputs(dir: &Path, userland: Userland) -> Inputs {
    let agent_bytes = agent_bytes(userland, 300_000);
    let agent = dir.join("flotta-agent");
    std::fs::write(&agent, &agent_bytes).unwrap();
    std::fs::write(
        dir.join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("register.pem"),
        "-----BEGIN CERTIFICATE-----\nUkVH\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("register.key"),
        "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("id.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey ops@example\n",
    )
    .unwrap();
    Inputs {
        dir: dir.to_path_buf(),
        agent,
        agent_bytes,
    }
}

pub fn options(i: &Inputs, image: &Path, output: &Path, board: &str) -> WriteOptions {
    WriteOptions {
        image: image.into(),
        output: output.into(),
        board: board.into(),
        agent: i.agent.clone(),
        server_url: "https://flotta.example:8043".into(),
        ca: Some(i.dir.join("ca.pem")),
        enrolment: Enrolment::Registration {
            cert: i.dir.join("register.pem"),
            key: i.dir.join("register.key"),
        },
        ..WriteOptions::default()
    }
}

/// Everything but the images in `dir`: left-over temporary files show up here.
pub fn stray_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".flotta-image"))
        .collect()
}

pub fn cat(image: &Path, path: &str) -> String {
    String::from_utf8(flotta_image::cat(image, path).unwrap()).unwrap()
}

/// What [`provision`] made.
pub struct Provision {
    /// The directory, as `flotta-server provision --out DIR` leaves it.
    pub dir: PathBuf,
    /// `identity/device.pem`: key then certificate.
    pub identity: String,
    /// `ca.pem`.
    pub ca: String,
    /// `frame/context.json`.
    pub frame_context: String,
}

/// A `flotta-server provision <device_id> --out dir/name` directory made here: a CA, a device
/// key and its certificate (CN = `device_id`) signed by it, and frame keys (the proto's
/// `FrameKeys` JSON).
pub fn provision(dir: &Path, name: &str, device_id: &str) -> Provision {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let out = dir.join(name);
    std::fs::create_dir_all(out.join("identity")).unwrap();
    std::fs::create_dir_all(out.join("frame")).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "flotta test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, device_id);
    let cert = params.signed_by(&key, &issuer).unwrap().pem();
    let identity = format!("{}{cert}", key.serialize_pem());
    let keys = flotta_proto::frame_keys::FrameKeys {
        key_id: [0xca, 0xfe, 0, 1],
        epoch: 1,
        master_secret: [0x5a; 32],
        master_salt: vec![7; 8],
    };
    let frame_context = format!("{}\n", serde_json::to_string_pretty(&keys).unwrap());
    std::fs::write(out.join("identity/device.pem"), &identity).unwrap();
    std::fs::write(out.join("ca.pem"), &ca).unwrap();
    std::fs::write(out.join("frame/context.json"), &frame_context).unwrap();
    Provision {
        dir: out,
        identity,
        ca,
        frame_context,
    }
}

/// `options` for a provisioned write: `--provisioned p.dir --device-id device_id`, no `--ca`.
pub fn provisioned_options(
    i: &Inputs,
    p: &Provision,
    device_id: &str,
    image: &Path,
    output: &Path,
    board: &str,
) -> WriteOptions {
    WriteOptions {
        ca: None,
        enrolment: Enrolment::Provisioned(p.dir.clone()),
        device_id: Some(device_id.into()),
        ..options(i, image, output, board)
    }
}
