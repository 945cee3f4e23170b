//! The few rtnetlink requests `linux.netDevices` needs, over a `NETLINK_ROUTE` socket
//! (messages from `netlink-packet-route`, the socket from `netlink-sys`). A socket talks to
//! the network namespace it was opened in, whatever thread uses it later.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A link: its index and name in the namespace it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
}

/// An address as read from the host, to be added again after the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub family: AddressFamily,
    pub prefix_len: u8,
    /// `IFA_LOCAL` (IPv4), else `IFA_ADDRESS`: what `ip addr` shows.
    pub local: IpAddr,
    /// `IFA_ADDRESS` when it differs from the local one (the peer of a point-to-point link).
    pub peer: Option<IpAddr>,
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// The flags a user sets (`nodad`, `noprefixroute`, ...), given again on the re-add.
    pub flags: AddressFlags,
    permanent: bool,
    global: bool,
}

impl Address {
    /// What the runtime spec moves: permanent addresses of global scope (RFC 3549 2.3.3.2).
    pub fn kept_on_move(&self) -> bool {
        self.permanent && self.global
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.local, self.prefix_len)
    }
}

pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// A socket in the network namespace `netns`: opened by a short-lived thread that joins
    /// it (a thread's network namespace is its own), so this process never leaves its own.
    pub fn open_in(netns: BorrowedFd<'_>) -> io::Result<Rtnl> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                    Rtnl::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the netns thread panicked")))
        })
    }

    /// Send one request and collect the answers until the end of a dump or the ACK.
    fn request(
        &mut self,
        inner: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = NetlinkMessage::from(inner);
        msg.header.flags = NLM_F_REQUEST | flags;
        msg.header.sequence_number = self.seq;
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut answers = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                // An ACK of an earlier request that was answered without waiting for it.
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                let multipart = msg.header.flags & NLM_F_MULTIPART != 0;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(answers),
                    NetlinkPayload::Error(e) => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(m) => {
                        answers.push(m);
                        if !multipart && flags & NLM_F_ACK == 0 {
                            return Ok(answers);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The link called `name`, `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(link_of)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers.into_iter().filter_map(link_of).collect())
    }

    /// The addresses of link `index`, of every family.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<Address>> {
        let answers = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => address_of(a),
                _ => None,
            })
            .collect())
    }

    /// Move link `index` into the network namespace `netns`, named `name` there (a `%d`
    /// template lets the kernel pick the number): one request, so the name is never taken
    /// on the host, and the move fails whole if the name is taken in `netns`.
    pub fn move_link(&mut self, index: u32, name: &str, netns: BorrowedFd<'_>) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_ACK)
            .map(drop)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_ACK)
            .map(drop)
    }

    pub fn add_address(&mut self, index: u32, address: &Address) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = address.family;
        msg.header.prefix_len = address.prefix_len;
        msg.header.index = index;
        msg.header.scope = AddressScope::Universe;
        msg.attributes.push(AddressAttribute::Local(address.local));
        msg.attributes.push(AddressAttribute::Address(
            address.peer.unwrap_or(address.local),
        ));
        if let Some(broadcast) = address.broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        }
        if !address.flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(address.flags));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL,
        )
        .map(drop)
    }
}

fn link_of(message: RouteNetlinkMessage) -> Option<Link> {
    let RouteNetlinkMessage::NewLink(link) = message else {
        return None;
    };
    let name = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })?;
    Some(Link {
        index: link.header.index,
        name,
    })
}

/// Address flags that are the user's choice, not the kernel's state of the address.
const USER_FLAGS: AddressFlags = AddressFlags::Nodad
    .union(AddressFlags::Noprefixroute)
    .union(AddressFlags::Homeaddress)
    .union(AddressFlags::Managetempaddr)
    .union(AddressFlags::Mcautojoin);

fn address_of(message: AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut broadcast = None;
    let mut flags = AddressFlags::empty();
    // IFA_FLAGS holds all 32 bits; the header's byte only the low ones (older kernels).
    let mut permanent = message.header.flags.contains(AddressHeaderFlags::Permanent);
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Broadcast(ip) => broadcast = Some(*ip),
            AddressAttribute::Flags(f) => {
                permanent = f.contains(AddressFlags::Permanent);
                flags = *f & USER_FLAGS;
            }
            _ => {}
        }
    }
    let shown = local.or(address)?;
    Some(Address {
        family: message.header.family,
        prefix_len: message.header.prefix_len,
        local: shown,
        peer: address.filter(|a| *a != shown),
        broadcast,
        flags,
        permanent,
        global: message.header.scope == AddressScope::Universe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::address::AddressHeader;

    fn message(scope: AddressScope, flags: Option<AddressFlags>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header = AddressHeader {
            family: AddressFamily::Inet6,
            prefix_len: 64,
            flags: AddressHeaderFlags::empty(),
            scope,
            index: 7,
        };
        m.attributes
            .push(AddressAttribute::Address("2001:db8::1".parse().unwrap()));
        if let Some(flags) = flags {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        m
    }

    #[test]
    fn only_permanent_global_addresses_are_kept() {
        let kept = address_of(message(
            AddressScope::Universe,
            Some(AddressFlags::Permanent | AddressFlags::Nodad | AddressFlags::Tentative),
        ))
        .unwrap();
        assert!(kept.kept_on_move());
        assert_eq!(kept.flags, AddressFlags::Nodad);
        assert_eq!(kept.to_string(), "2001:db8::1/64");
        assert_eq!(kept.peer, None);
        // A link-local address, an address learnt from the network (not permanent).
        assert!(
            !address_of(message(AddressScope::Link, Some(AddressFlags::Permanent)))
                .unwrap()
                .kept_on_move()
        );
        assert!(
            !address_of(message(AddressScope::Universe, Some(AddressFlags::empty())))
                .unwrap()
                .kept_on_move()
        );
    }

    #[test]
    fn ipv4_local_and_peer() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = 32;
        m.header.flags = AddressHeaderFlags::Permanent;
        m.header.scope = AddressScope::Universe;
        m.attributes
            .push(AddressAttribute::Local("10.9.0.1".parse().unwrap()));
        m.attributes
            .push(AddressAttribute::Address("10.9.0.2".parse().unwrap()));
        let a = address_of(m).unwrap();
        assert!(a.kept_on_move());
        assert_eq!(a.local, "10.9.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(a.peer, Some("10.9.0.2".parse().unwrap()));
    }
}
