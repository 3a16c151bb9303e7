//! The lmrs model file, version 1: a 256-byte header, then every tensor at a 64-byte aligned offset in a fixed
//! order, with a CRC-32 over both. The spec is engines/lmrs/README.md ("File format"); the Go writer is
//! runner/internal/lmrsfmt. Both sides compute the layout from the header alone, so the header is all a reader
//! needs to find a tensor.

use std::fmt;

/// MAGIC starts every file this format writes.
pub const MAGIC: [u8; 8] = *b"CIBLMRS\0";
/// UPSTREAM_MAGIC starts the files of samuel-vitorino/lm.rs's export.py, which this engine does not read.
pub const UPSTREAM_MAGIC: [u8; 4] = *b"lmrs";
/// VERSION is the only format version this reader accepts.
pub const VERSION: u32 = 1;
/// HEADER_LEN is the header's size in bytes; the payload starts right after it.
pub const HEADER_LEN: usize = 256;
/// ALIGN is the alignment of every tensor's offset (and of the scales inside a quantized tensor), in bytes.
pub const ALIGN: usize = 64;
/// CRC_AT is the header offset of the checksum: CRC-32 (IEEE) of header[0..CRC_AT] followed by the payload.
pub const CRC_AT: usize = 248;

/// Quant is how the weight matrices are stored; norms are always f32.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Quant {
    F32,
    /// Q8_0: int8 values, one f32 scale per group (value = q·scale).
    Q8_0,
    /// Q4_0: 4-bit values 0..15, one f32 scale per group (value = (q−8)·scale).
    Q4_0,
}

impl Quant {
    pub fn code(self) -> u32 {
        match self {
            Quant::F32 => 0,
            Quant::Q8_0 => 1,
            Quant::Q4_0 => 2,
        }
    }

    pub fn from_code(c: u32) -> Option<Quant> {
        match c {
            0 => Some(Quant::F32),
            1 => Some(Quant::Q8_0),
            2 => Some(Quant::Q4_0),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Quant> {
        match s {
            "" | "f32" => Some(Quant::F32),
            "q8_0" => Some(Quant::Q8_0),
            "q4_0" => Some(Quant::Q4_0),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quant::F32 => "f32",
            Quant::Q8_0 => "q8_0",
            Quant::Q4_0 => "q4_0",
        }
    }
}

/// Llama3Rope is rope_scaling of type llama3.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Llama3Rope {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: u32,
}

/// Header is the model's shape, numerics and storage.
#[derive(Clone, PartialEq, Debug)]
pub struct Header {
    pub quant: Quant,
    /// Values per quantization group along a matrix row; 0 for f32.
    pub group_size: u32,
    pub vocab: u32,
    pub dim: u32,
    pub hidden: u32,
    pub n_layers: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub max_seq: u32,
    pub tied: bool,
    pub rope_theta: f64,
    pub rms_eps: f64,
    pub rope: Option<Llama3Rope>,
    /// Bytes after the header: the file is HEADER_LEN + payload_bytes long.
    pub payload_bytes: u64,
}

/// FormatError is a file this reader refuses, with the reason.
#[derive(Debug)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Where and how big one tensor is. For f32 matrices and vectors data is the values; for quantized matrices
/// data holds the packed values and scales the f32 scales.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    pub rows: usize,
    pub cols: usize,
    pub data: usize,
    pub scales: usize,
    pub end: usize,
}

/// Layer holds the slots of one decoder layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerSlots {
    pub attn_norm: Slot,
    pub wq: Slot,
    pub wk: Slot,
    pub wv: Slot,
    pub wo: Slot,
    pub mlp_norm: Slot,
    pub gate: Slot,
    pub up: Slot,
    pub down: Slot,
}

/// Layout is every tensor's slot, in file order.
#[derive(Clone, Debug)]
pub struct Layout {
    pub embed: Slot,
    pub layers: Vec<LayerSlots>,
    pub norm: Slot,
    /// lm_head; equal to embed when the embeddings are tied.
    pub lm_head: Slot,
    /// End of the last tensor: the file size.
    pub end: usize,
}

pub fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

impl Header {
    /// encode writes the header with a zero checksum.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        let u32s = [
            (8, VERSION),
            (12, self.quant.code()),
            (16, self.group_size),
            (20, self.vocab),
            (24, self.dim),
            (28, self.hidden),
            (32, self.n_layers),
            (36, self.n_heads),
            (40, self.n_kv_heads),
            (44, self.head_dim),
            (48, self.max_seq),
            (52, self.tied as u32),
            (72, self.rope.is_some() as u32),
            (76, self.rope.map_or(0, |r| r.original_max_position_embeddings)),
        ];
        for (at, v) in u32s {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        let r = self.rope.unwrap_or(Llama3Rope {
            factor: 0.0,
            low_freq_factor: 0.0,
            high_freq_factor: 0.0,
            original_max_position_embeddings: 0,
        });
        for (at, v) in [
            (56, self.rope_theta),
            (64, self.rms_eps),
            (80, r.factor),
            (88, r.low_freq_factor),
            (96, r.high_freq_factor),
        ] {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        b[104..112].copy_from_slice(&self.payload_bytes.to_le_bytes());
        b
    }

    /// decode parses and validates a header; the checksum is checked separately (verify).
    pub fn decode(b: &[u8]) -> Result<Header, FormatError> {
        if b.len() >= 4 && b[0..4] == UPSTREAM_MAGIC {
            return Err(FormatError(
                "file starts with \"lmrs\": an upstream lm.rs export, not this engine's format; \
                 convert the HF model with `runner models convert --to lmrs`"
                    .into(),
            ));
        }
        if b.len() < HEADER_LEN || b[0..8] != MAGIC {
            return Err(FormatError(
                "not an lmrs file written by `runner models convert --to lmrs` (bad magic)".into(),
            ));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(FormatError(format!(
                "lmrs format version {version}; this engine reads version {VERSION} (re-run `runner models convert`)"
            )));
        }
        let quant = Quant::from_code(u32_at(b, 12))
            .ok_or_else(|| FormatError(format!("unknown quantization code {}", u32_at(b, 12))))?;
        let rope = match u32_at(b, 72) {
            0 => None,
            1 => Some(Llama3Rope {
                factor: f64_at(b, 80),
                low_freq_factor: f64_at(b, 88),
                high_freq_factor: f64_at(b, 96),
                original_max_position_embeddings: u32_at(b, 76),
            }),
            t => return Err(FormatError(format!("unknown rope scaling code {t}"))),
        };
        let h = Header {
            quant,
            group_size: u32_at(b, 16),
            vocab: u32_at(b, 20),
            dim: u32_at(b, 24),
            hidden: u32_at(b, 28),
            n_layers: u32_at(b, 32),
            n_heads: u32_at(b, 36),
            n_kv_heads: u32_at(b, 40),
            head_dim: u32_at(b, 44),
            max_seq: u32_at(b, 48),
            tied: u32_at(b, 52) != 0,
            rope_theta: f64_at(b, 56),
            rms_eps: f64_at(b, 64),
            rope,
            payload_bytes: u64_at(b, 104),
        };
        h.validate()?;
        Ok(h)
    }

    /// validate checks the shape is one the kernels can run: every size positive, heads grouped evenly, an even
    /// head_dim, and for quantized files a group size that is a multiple of 16 and divides every row.
    pub fn validate(&self) -> Result<(), FormatError> {
        let sizes = [
            ("vocab", self.vocab),
            ("dim", self.dim),
            ("hidden", self.hidden),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("max_seq", self.max_seq),
        ];
        for (name, v) in sizes {
            if v == 0 {
                return Err(FormatError(format!("header: {name} is 0")));
            }
        }
        if self.n_heads % self.n_kv_heads != 0 {
            return Err(FormatError(format!(
                "header: n_heads {} is not a multiple of n_kv_heads {}",
                self.n_heads, self.n_kv_heads
            )));
        }
        if self.head_dim % 2 != 0 {
            return Err(FormatError(format!("header: head_dim {} is odd", self.head_dim)));
        }
        if !(self.rope_theta > 0.0) || !(self.rms_eps > 0.0) {
            return Err(FormatError(format!(
                "header: rope_theta {} and rms_eps {} must be positive",
                self.rope_theta, self.rms_eps
            )));
        }
        match self.quant {
            Quant::F32 if self.group_size != 0 => {
                return Err(FormatError(format!(
                    "header: f32 file with group size {}",
                    self.group_size
                )))
            }
            Quant::F32 => {}
            _ => check_group_size(self.group_size, &self.row_lengths()).map_err(FormatError)?,
        }
        Ok(())
    }

    /// row_lengths are the input widths of the matrices: what a group must divide.
    pub fn row_lengths(&self) -> [u32; 3] {
        [self.dim, self.hidden, self.n_heads * self.head_dim]
    }

    /// layout computes every tensor's slot from the header.
    pub fn layout(&self) -> Layout {
        let mut at = HEADER_LEN;
        let d = self.dim as usize;
        let h = self.hidden as usize;
        let qd = (self.n_heads * self.head_dim) as usize;
        let kvd = (self.n_kv_heads * self.head_dim) as usize;
        let v = self.vocab as usize;
        let embed = self.matrix(&mut at, v, d);
        let layers = (0..self.n_layers)
            .map(|_| LayerSlots {
                attn_norm: vector(&mut at, d),
                wq: self.matrix(&mut at, qd, d),
                wk: self.matrix(&mut at, kvd, d),
                wv: self.matrix(&mut at, kvd, d),
                wo: self.matrix(&mut at, d, qd),
                mlp_norm: vector(&mut at, d),
                gate: self.matrix(&mut at, h, d),
                up: self.matrix(&mut at, h, d),
                down: self.matrix(&mut at, d, h),
            })
            .collect();
        let norm = vector(&mut at, d);
        let lm_head = if self.tied { embed } else { self.matrix(&mut at, v, d) };
        Layout {
            embed,
            layers,
            norm,
            lm_head,
            end: at,
        }
    }

    fn matrix(&self, at: &mut usize, rows: usize, cols: usize) -> Slot {
        let data = align(*at);
        let n = rows * cols;
        let (scales, end) = match self.quant {
            Quant::F32 => (data, data + 4 * n),
            Quant::Q8_0 => {
                let s = align(data + n);
                (s, s + 4 * n / self.group_size as usize)
            }
            Quant::Q4_0 => {
                let s = align(data + n / 2);
                (s, s + 4 * n / self.group_size as usize)
            }
        };
        *at = end;
        Slot {
            rows,
            cols,
            data,
            scales,
            end,
        }
    }
}

fn vector(at: &mut usize, n: usize) -> Slot {
    let data = align(*at);
    *at = data + 4 * n;
    Slot {
        rows: 1,
        cols: n,
        data,
        scales: data,
        end: *at,
    }
}

/// check_group_size accepts a positive multiple of 16 that divides every row length.
pub fn check_group_size(gs: u32, rows: &[u32]) -> Result<(), String> {
    if gs == 0 || gs % 16 != 0 {
        return Err(format!("group size {gs}: want a positive multiple of 16"));
    }
    if let Some(r) = rows.iter().find(|&&r| r % gs != 0) {
        return Err(format!("group size {gs} does not divide the row length {r}"));
    }
    Ok(())
}

/// default_group_size is 64 (lm.rs's default) when it divides every row, else the largest of 32 and 16 that does.
pub fn default_group_size(rows: &[u32]) -> Result<u32, String> {
    [64, 32, 16]
        .into_iter()
        .find(|&g| check_group_size(g, rows).is_ok())
        .ok_or_else(|| format!("no group size of 64, 32 or 16 divides the row lengths {rows:?}"))
}

/// checksum is the file's CRC-32 (IEEE): header[0..CRC_AT] then the payload.
pub fn checksum(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..CRC_AT]);
    h.update(&file[HEADER_LEN..]);
    h.finalize()
}

/// verify checks a whole file image: header, size and checksum.
pub fn verify(file: &[u8]) -> Result<(Header, Layout), FormatError> {
    let h = Header::decode(file)?;
    let layout = h.layout();
    let want = HEADER_LEN as u64 + h.payload_bytes;
    if layout.end as u64 != want {
        return Err(FormatError(format!(
            "header: payload of {} bytes, the layout needs {}",
            h.payload_bytes,
            layout.end - HEADER_LEN
        )));
    }
    if file.len() as u64 != want {
        return Err(FormatError(format!(
            "file is {} bytes, header says {want} (truncated or appended to)",
            file.len()
        )));
    }
    let stored = u32_at(file, CRC_AT);
    let got = checksum(file);
    if stored != got {
        return Err(FormatError(format!(
            "checksum mismatch: header says {stored:08x}, contents give {got:08x} (file corrupted)"
        )));
    }
    Ok((h, layout))
}

/// stored_checksum reads the checksum field of a file image.
pub fn stored_checksum(file: &[u8]) -> u32 {
    u32_at(file, CRC_AT)
}

/// Image is a whole model file in memory: mapped from disk, or built by an in-memory conversion.
pub enum Image {
    Mapped(memmap2::Mmap),
    /// u64 words keep the f32 data aligned; the second field is the length in bytes.
    Owned(Vec<u64>, usize),
}

impl Image {
    /// zeroed returns an owned image of n zero bytes.
    pub fn zeroed(n: usize) -> Image {
        Image::Owned(vec![0u64; n.div_ceil(8)], n)
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Image::Mapped(m) => m,
            // Safety: the Vec holds at least n bytes and u8 has no alignment needs.
            Image::Owned(v, n) => unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, *n) },
        }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Image::Mapped(_) => panic!("a mapped image is read-only"),
            // Safety: as bytes.
            Image::Owned(v, n) => unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, *n) },
        }
    }
}

/// cast views bytes [at, at+4n) of an image as n values of T (f32, i8, u8).
///
/// # Safety
/// The range must be inside the image and at suitably aligned (every slot is 64-byte aligned and the image
/// base is 8-byte aligned).
pub unsafe fn cast<T>(b: &[u8], at: usize, n: usize) -> &[T] {
    let size = std::mem::size_of::<T>();
    assert!(
        at + n * size <= b.len(),
        "slot [{at}, +{}) outside an image of {}",
        n * size,
        b.len()
    );
    let p = b.as_ptr().add(at);
    assert_eq!(p as usize % std::mem::align_of::<T>(), 0, "misaligned slot at {at}");
    std::slice::from_raw_parts(p as *const T, n)
}
