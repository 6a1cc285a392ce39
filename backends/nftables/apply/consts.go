package apply

// Values from linux/netfilter/nf_tables.h and linux/netfilter.h that
// golang.org/x/sys/unix does not define.
const (
	nfDrop   = 0 // NF_DROP
	nfAccept = 1 // NF_ACCEPT

	nftaTableUserdata  = 6  // NFTA_TABLE_USERDATA
	nftaChainUserdata  = 12 // NFTA_CHAIN_USERDATA
	nftaSetExpr        = 17 // NFTA_SET_EXPR
	nftaSetExpressions = 18 // NFTA_SET_EXPRESSIONS
	nftaSetElemObjref  = 9  // NFTA_SET_ELEM_OBJREF
	nftaSetElemKeyEnd  = 10 // NFTA_SET_ELEM_KEY_END
	nftaSetElemExprs   = 11 // NFTA_SET_ELEM_EXPRESSIONS
	nftaFlowtableTable = 1  // NFTA_FLOWTABLE_TABLE
	nftaBitwiseOp      = 6  // NFTA_BITWISE_OP
	nlmFCapped         = 0x100
	udataRuleComment   = 0 // NFTNL_UDATA_RULE_COMMENT
)
